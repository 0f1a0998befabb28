"""Scale-out (issue 12): several Vigil instances serving one clinic through one Redis.

- ``redis_hub.RedisHub``: the hub's cross-instance transport (one clinic-wide Redis stream: same seq, epoch and
  live state on every instance; resume on any instance).
- ``ownership.AlarmOwnership``: one instance evaluates each bay's alarms at a time (a lease in Redis); the
  others forward their users' alarm actions to it, and take over within the technical-alarm budget when it dies.
"""

from __future__ import annotations

from app.scale.redis_hub import RedisHub, RedisUnavailable, redis_problem

__all__ = ["RedisHub", "RedisUnavailable", "redis_problem"]
