"""One module per command of `python main.py`; fcn.cli lists them and dispatches."""
