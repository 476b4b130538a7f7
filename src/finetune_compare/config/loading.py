"""Reading a config: YAML files (later files override earlier ones key by key), `--set key=value`, `--sweep`.

YAML is read with `yaml.safe_load` only. Unknown keys are errors that name the closest valid key, so a typo can
never be silently ignored. Writing: `config_to_yaml`, with secrets removed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..redaction import redact
from .core import Config
from .keys import flat_key, flatten_sections, known_key, unknown_key_error

log = logging.getLogger(__name__)


def from_dict(data: dict[str, Any], where: str = "config") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
    data = flatten_sections(data, where)
    for key in data:
        if not known_key(key):
            raise unknown_key_error(str(key), where)
    try:
        return Config(**data)
    except TypeError as exc:  # pragma: no cover - every key was checked above
        raise ConfigError(f"{where}: {exc}") from None


PRESETS = Path(__file__).resolve().parents[1] / "configs"  # shipped in the package: `--config quickstart`


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def resolve_config_path(path: str | Path) -> Path:
    """A config file by path, or a packaged preset by name (`quickstart`, also `quickstart.yaml` or
    `configs/quickstart.yaml` where no such file exists here: an installed wheel has no configs/ folder)."""
    given = Path(path)
    if given.is_file():
        return given
    name = given.name.removesuffix(".yaml")
    if (PRESETS / f"{name}.yaml").is_file() and (given.parent in (Path("."), Path("configs"))):
        return PRESETS / f"{name}.yaml"
    raise ConfigError(f"config file '{path}' does not exist or is not a file (packaged presets, usable by name: "
                      f"{', '.join(preset_names())})")


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = resolve_config_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file '{path}' is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}': expected a mapping of keys to values, got {type(data).__name__}")
    return data


def _set_value(raw: str) -> Any:
    """A `--set` value, parsed as YAML so lists and numbers work (text that is not YAML stays text)."""
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return raw


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs; values are parsed as YAML so lists and numbers work."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = flat_key(key.strip())
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        if not known_key(key):
            raise unknown_key_error(key, "--set")
        out[key] = _set_value(raw)
    return out


def split_top_level(raw: str, item: str) -> list[str]:
    """`[query,value],[query]` -> `[query,value]`, `[query]`: commas inside brackets, braces or quotes belong to
    one value (a list value such as target modules)."""
    parts, depth, quote, current = [], 0, None, []
    for char in raw:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0 and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0 or quote:
        raise ConfigError(f"--sweep {item!r}: unbalanced brackets or quotes")
    return [*parts, "".join(current)]


def parse_sweep(items: list[str]) -> dict[str, list]:
    """`--sweep key=v1,v2,v3` (repeatable for a second key); each value is parsed as YAML, like --set."""
    out: dict[str, list] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = flat_key(key.strip(), "--sweep")
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--sweep expects key=value1,value2,..., got {item!r}")
        if key in out:
            raise ConfigError(f"--sweep: key '{key}' is given twice; list all its values in one --sweep")
        values = []
        for part in split_top_level(raw, item):
            if not part.strip():
                raise ConfigError(f"--sweep {item!r}: an empty value between commas")
            try:
                values.append(yaml.safe_load(part))
            except yaml.YAMLError:
                values.append(part.strip())
        out[key] = values
    return out


def _merge_method_overrides(data: dict[str, Any], layer: dict[str, Any], where: str) -> None:
    """`layer`'s method_overrides merged into `data`'s per method and key (a later layer wins key by key)."""
    per_method = layer.get("method_overrides")
    for m, v in per_method.items() if isinstance(per_method, dict) else ():
        if v is not None and not isinstance(v, dict):  # merged below: a scalar here would be a TypeError
            raise ConfigError(f"{where}: config key 'method_overrides.{m}': expected a mapping of config keys to "
                              f"values, got {v!r} ({type(v).__name__})")
    if isinstance(per_method, dict) and isinstance(data.get("method_overrides"), dict):
        merged = {m: dict(v or {}) for m, v in data["method_overrides"].items()}
        for m, v in layer.pop("method_overrides").items():
            merged[m] = {**merged.get(m, {}), **(v or {})}
        data["method_overrides"] = merged


def _nested_overrides(items: list[str]) -> tuple[list[str], dict[str, dict]]:
    """`--set method_overrides.lora.num_epochs=1` entries, as {lora: {num_epochs: 1}}; the other items as given."""
    rest, nested = [], {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if parts[0] != "method_overrides" or len(parts) == 1:
            rest.append(item)
            continue
        if len(parts) != 3 or not sep:
            raise ConfigError(f"--set {item!r}: expected method_overrides.METHOD.KEY=VALUE")
        nested.setdefault(parts[1], {})[parts[2]] = _set_value(raw)
    return rest, nested


def replaced_settings(data: dict[str, Any], given: dict[str, str], override_source: dict[tuple[str, str], str]
                      ) -> list[str]:
    """A value given by --set (or a later config file) that a method's override replaces for that method."""
    out = []
    for method, keys in (data.get("method_overrides") or {}).items():
        for key, value in (keys or {}).items():
            source = given.get(key)
            if source is None or source == override_source.get((method, key)) or value == data.get(key):
                continue
            out.append(f"{key}={data[key]!r} ({source}) does not apply to {method}: method_overrides.{method}.{key}="
                       f"{value!r} ({override_source.get((method, key), 'config')}) replaces it; to change it too: "
                       f"--set method_overrides.{method}.{key}=VALUE")
    return out


def load_config(path: str | Path | list | None = None, overrides: list[str] | None = None, **extra: Any) -> Config:
    """Load YAML file(s) (later files override earlier ones key by key; `method_overrides`
    is merged per method and key, `--set method_overrides.M.K=V` too), apply `--set` overrides and keyword
    overrides, validate. A global value given later that a method's override replaces is warned about."""
    paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
    data: dict[str, Any] = {}
    given: dict[str, str] = {}  # key -> where its value came from
    override_source: dict[tuple[str, str], str] = {}
    for p in paths:
        where = f"config file '{p}'"
        layer = flatten_sections(load_yaml(p), where)
        for key in layer:
            if not known_key(key):
                raise unknown_key_error(str(key), where)
        per_method = layer.get("method_overrides")
        if isinstance(per_method, dict):
            override_source.update({(m, k): where for m, v in per_method.items() if isinstance(v, dict) for k in v})
        _merge_method_overrides(data, layer, where)
        given.update({k: where for k in layer if k != "method_overrides"})
        data.update(layer)
    where = f"config file '{paths[-1]}'" if paths else "config"
    rest, nested = _nested_overrides(overrides or [])
    flat = parse_overrides(rest)
    given.update({k: f"--set {k}" for k in flat if k != "method_overrides"})
    data.update(flat)
    if nested:
        override_source.update({(m, k): f"--set method_overrides.{m}.{k}" for m, v in nested.items() for k in v})
        _merge_method_overrides(data, {"method_overrides": nested}, "--set")
        data.setdefault("method_overrides", nested)
    given.update({k: "command line" for k, v in extra.items() if v is not None})
    data.update({k: v for k, v in extra.items() if v is not None})
    config = from_dict(data, where)
    for line in replaced_settings(config.to_dict(), given, override_source):
        log.warning(line)
    return config


def config_to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(redact(cfg.to_dict()), sort_keys=False, allow_unicode=True)
