"""User-facing errors: one readable line, never a traceback."""


class CausalMixError(Exception):
    """An error caused by the user's input (spec, data, options); printed as one line."""


class SpecError(CausalMixError):
    """A malformed sweep or pretraining file; the message names the file and the field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: field '{field}': {problem}")


class DataError(CausalMixError):
    """A dataset that cannot be used as asked (missing target, one class, too wide, ...)."""


class MissingExtraError(CausalMixError):
    """An optional dependency is not installed."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the optional package '{module}': "
            f"install it with  pip install 'causalmix-sweep[{extra}]'"
        )


class SweepLockedError(CausalMixError):
    """Another driver holds the sweep's lease (one driver per sweep)."""


class OptionError(CausalMixError):
    """A bad plug-in option value; ``option`` names it (a sweep file's error names the field
    ``methods[i].options.<option>``)."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        super().__init__(problem)
