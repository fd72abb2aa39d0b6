"""The one exception type the CLI turns into a clean error line.

Library code raises ``OcirtError`` for every failure a user can cause; the
CLI prints its message once (stderr, and one JSON line to ``--log``) and exits
with ``exit_code``.  Anything else escaping is a bug and shows a traceback
only under ``--debug``.
"""


class OcirtError(Exception):
    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(OcirtError):
    pass


class ConfigError(OcirtError):
    """config.json is invalid; the message names the JSON path."""


class ContainerNotFound(OcirtError):
    def __init__(self, container_id):
        super().__init__(f"container does not exist: {container_id}")
        self.container_id = container_id
