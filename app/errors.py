"""Errors every layer raises and the API turns into one JSON shape: code, message, fields."""


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message, fields=None, code=None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code


class InvalidData(AppError):
    status = 422
    code = "invalid_data"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class ProcessError(AppError):
    """The diagram could not be run (e.g. an expression failed); nothing was saved."""
    status = 500
    code = "process_error"
