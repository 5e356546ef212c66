"""Scripts for child processes that lose power: `os._exit(137)`, nothing cleaned up."""

# Prepended to a child's script: `arm_power_cut(n)` makes the n-th following call
# that makes something durable or moves a name (fsync, rename, replace, link,
# unlink) end the process before it runs.
ARM_POWER_CUT = """
import os

def arm_power_cut(cut_at):
    calls = [0]

    def power_cut_before(function):
        def call(*args, **kwargs):
            calls[0] += 1
            if calls[0] == cut_at:
                os._exit(137)
            return function(*args, **kwargs)
        return call

    for name in ("fsync", "rename", "replace", "link", "unlink"):
        setattr(os, name, power_cut_before(getattr(os, name)))
"""
