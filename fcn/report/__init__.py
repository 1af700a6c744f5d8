"""A static web page per run (runs/<stamp>/index.html) and one for all runs (runs/index.html).

The pages open from disk (file://) with no server and no network: relative links, curves as
inline SVG, our own few lines of JavaScript for sorting tables, thumbnails in RUN/report/.

    run_folder  reads a run folder, whatever it holds so far (partial, interrupted, evaluated)
    plots       SVG line charts of the per-epoch log and the confusion matrix
    thumbs      JPEG thumbnails of the galleries' images, remade only when their source changes
    html        escaping, number formats, tables, the shared style and script
    page        the run page (write_run_page)
    index       the page of all runs (write_index)
"""

from fcn.report.index import write_index
from fcn.report.page import write_run_page

__all__ = ["refresh", "write_index", "write_run_page"]


def refresh(run_dir, log=print):
    """Rewrite a run's page after training or evaluate; a failure here never costs the run or
    its scores (they are written already), so it is reported in one line, not raised."""
    try:
        page = write_run_page(run_dir)
    except Exception as e:  # noqa: BLE001 - whatever broke, the run itself is complete
        log(f"warning: could not write the run page of {run_dir}: {type(e).__name__}: {e}")
        return None
    log(f"run page: {page}")
    return page
