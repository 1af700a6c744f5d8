"""The one exception type a user ever sees: a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user (file, folder, flag). The message names the culprit and the fix.

    Entry points catch it, print ``error: <message>`` to stderr and exit with code 2, so a mistake
    in the data never ends in a traceback.
    """

    exit_code = 2
