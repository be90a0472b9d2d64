"""The errors a user can act on. Each message says what is wrong and how to fix it,
so the command line prints it alone, without a traceback."""


class MlpSweepError(Exception):
    """Base of the errors that are the input's fault, not the code's."""


class ConfigError(MlpSweepError, ValueError):
    """A config value is out of range."""


class DataError(MlpSweepError, ValueError):
    """The data cannot be used."""


class DivergedError(MlpSweepError, RuntimeError):
    """The training loss became NaN or infinite: the run cannot recover."""


class TrackingError(MlpSweepError, RuntimeError):
    """The MLflow store cannot be used, or the sweep or experiment asked for does not exist."""


def first_line(error: BaseException) -> str:
    """An exception's message, first line only: SQLAlchemy appends the SQL and a link."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:300]


def reason(error: BaseException) -> str:
    """One line that says what went wrong: our own errors' messages are written for the user."""
    if isinstance(error, MlpSweepError):
        return str(error)
    return f"{type(error).__name__}: {first_line(error)}"


def interruption(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or SIGTERM) behind ``error``: the error itself, or one it was raised while handling.

    A library may raise an error of its own while unwinding from the interrupt
    (TensorFlow, stopped while tracing a step, fails on the half-built trace);
    the stop is still the user's, not a failed job.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__context__
    return None
