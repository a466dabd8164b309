"""Plugin discovery: the pluggy manager, entry points and the dialect registry."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from wirecache import hookspecs
from wirecache.dialect import Dialect

ENTRY_POINT_GROUP = "wirecache"


@dataclass(frozen=True)
class PluginInfo:
    """A discovered plugin, for ``wirecache plugins``."""

    name: str
    distribution: str
    version: str
    dialects: tuple[str, ...]


class Plugins:
    """The plugin manager with every installed plugin loaded and its dialects collected."""

    def __init__(self, *, load_entry_points: bool = True, extra: tuple[object, ...] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if load_entry_points:
            self.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        for plugin in extra:
            self.pm.register(plugin)
        self.dialects: dict[str, Dialect] = {}
        for plugin in self.pm.get_plugins():
            for dialect in self._dialects_of(plugin):
                if dialect.name in self.dialects:
                    raise RuntimeError(
                        f"two plugins provide the dialect {dialect.name!r}; uninstall one"
                    )
                self.dialects[dialect.name] = dialect

    def _dialects_of(self, plugin: object) -> list[Dialect]:
        impl = getattr(plugin, "wirecache_dialects", None)
        return list(impl()) if impl is not None else []

    def dialect_ports(self) -> dict[str, tuple[int, int]]:
        """(origin, listen) default ports per dialect, for configuration defaults."""
        return {
            name: (d.default_origin_port, d.default_listen_port)
            for name, d in self.dialects.items()
        }

    def implemented(self, hook_name: str) -> bool:
        """True when some plugin implements ``hook_name`` (observers are skipped otherwise)."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def info(self) -> list[PluginInfo]:
        dists = {id(p): d for p, d in self.pm.list_plugin_distinfo()}
        found = []
        for plugin in self.pm.get_plugins():
            dist = dists.get(id(plugin))
            found.append(
                PluginInfo(
                    name=self.pm.get_name(plugin) or repr(plugin),
                    distribution=dist.project_name if dist else "(registered in process)",
                    version=dist.version if dist else "",
                    dialects=tuple(d.name for d in self._dialects_of(plugin)),
                )
            )
        return found
