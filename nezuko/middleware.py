import re
import uuid

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Binds a request id to every log line of the request and echoes it back.

    An incoming `X-Request-ID` is kept when it looks harmless, so ids can be
    followed through a proxy; otherwise a fresh one is made.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _bind(self, request) -> str:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return request_id

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        request_id = self._bind(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response

    async def __acall__(self, request):
        request_id = self._bind(request)
        response = await self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
