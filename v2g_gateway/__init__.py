"""v2g-gateway: a local OCPP 2.0.1 central system that plans and dispatches V2G and V2H."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("v2g-gateway")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+src"
