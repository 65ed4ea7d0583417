"""The one exception type for bad input: its message is the whole, one-line story."""


class InputError(Exception):
    """Bad input data or parameters; the message names the file, column and count.

    The CLI prints it as a single line and exits non-zero, without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


# How the CLI reports an InputError on stderr (with exit code 2), and how the Airflow tasks recognise it.
ERROR_PREFIX = "shoprec: error:"
