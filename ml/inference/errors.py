"""Errors that serving code raises for the layers above it to translate."""


class InputError(ValueError):
    """One input of a request cannot be used (undecodable image, text that is not a string...).

    ``index`` is the input's position in the sequence handed to ``Predictor.preprocess``, so a
    batcher that merged several requests can tell whose input it was; ``field`` names it the
    way an API error does (``inputs[3]``).
    """

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"inputs[{index}]: {message}")
        self.index = index
        self.message = message

    @property
    def field(self) -> str:
        return f"inputs[{self.index}]"


class RuntimeUnavailable(RuntimeError):
    """The artifact has no exported file for the requested runtime, or the runtime is unknown."""
