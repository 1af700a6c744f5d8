"""The one exception type a user ever sees: a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user (file, folder, flag). The message names the culprit and the fix.

    Entry points catch it, print ``error: <message>`` to stderr and exit with code 2, so a mistake
    in the data never ends in a traceback.
    """

    exit_code = 2


_TF_NOISE = ("Graph execution error:", "Detected at node", "Node: ", "Original stack trace", "[[")


def tensorflow_message(error, limit=300):
    """The line of a tf.errors.OpError that says what went wrong: its message without the
    Python stack TensorFlow puts in front ("Graph execution error: Detected at node ... File
    ...") and the NodeDef after it; a second root error is left to --verbose."""
    lines = (error.message or "").splitlines()
    for line in lines:
        text = line.strip()
        indented = line[:1].isspace() and not text.startswith("(0)")
        if text and not indented and not text.startswith(_TF_NOISE):
            return text[:limit]
    return next((line.strip() for line in lines if line.strip()), type(error).__name__)[:limit]
