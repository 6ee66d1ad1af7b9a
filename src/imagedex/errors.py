"""Exceptions that carry a message a user can act on."""


class ImagedexError(Exception):
    """Base class for every error imagedex raises on purpose."""


class ConfigError(ImagedexError):
    """A setting is missing or malformed."""


class InvalidKeyError(ImagedexError):
    """An object key is empty, too long or escapes the bucket."""


class ObjectNotFoundError(ImagedexError):
    """The object store has no object under the requested key."""


class ImageDecodeError(ImagedexError):
    """The bytes are not an image imagedex can safely decode."""


class EventParseError(ImagedexError):
    """A queue message is not a notification imagedex understands."""


class RecognitionError(ImagedexError):
    """A recognizer failed on an image it was given."""


class IndexUnavailableError(ImagedexError):
    """The search index cannot be reached or refused the write."""


class QueryTooLargeError(ImagedexError):
    """A search the index cannot run as asked (more labels than the engine's clause limit);
    the caller's to change, so it is not retried."""


class QuerySyntaxError(ValueError):
    """A search box query (`label:dog confidence>=90 ...`) that cannot be understood; the
    message names the token and shows a form that works."""
