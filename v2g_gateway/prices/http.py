"""The one HTTP call every source makes, turning transport trouble into PriceFetchError."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from v2g_gateway.errors import PriceFetchError

_MAX_BYTES = 20_000_000


async def get_checked(
    http: httpx.AsyncClient,
    name: str,
    url: str,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    ok_statuses: tuple[int, ...] = (200,),
) -> httpx.Response:
    """GET with errors worded for users; secrets in the query never reach the message."""
    try:
        resp = await http.get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        raise PriceFetchError(f"{name}: timed out talking to {_host(url)}") from None
    except httpx.HTTPError as exc:
        raise PriceFetchError(f"{name}: cannot reach {_host(url)}: {type(exc).__name__}") from None
    if resp.status_code in (401, 403):
        raise PriceFetchError(
            f"{name}: the server refused the credentials (HTTP {resp.status_code}); check the token"
        )
    if resp.status_code not in ok_statuses:
        raise PriceFetchError(f"{name}: HTTP {resp.status_code} from {_host(url)}")
    if len(resp.content) > _MAX_BYTES:
        raise PriceFetchError(f"{name}: response of {len(resp.content)} bytes is too large")
    return resp


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except httpx.InvalidURL:
        return "the server"
