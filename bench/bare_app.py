"""The baseline: a bare Starlette POST endpoint that reads the body and answers 200.

billbot's webhook endpoint is compared with this, served the same way (one uvicorn
process, the same event loop and HTTP parser), in the same run.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def receive(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"received": True})


app = Starlette(routes=[Route("/stripe/webhook", receive, methods=["POST"])])
