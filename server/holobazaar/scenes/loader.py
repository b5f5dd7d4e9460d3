"""Loads a content folder (`scenes/<market>/market.yaml`, `scenes/<market>/displays/*.yaml`,
`assets/`) into validated models, reporting every problem with file, line and path.

What other domains add is passed in, not imported (scenes knows no other domain): the
loader of each market's shows and the sample values of their template bindings. The
whole server's loader, with both, is holobazaar.content.load_content."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from holobazaar.scenes import schedule, templates
from holobazaar.scenes.compositor import compose_display
from holobazaar.scenes.inputs import AssetRef, Binding, ItemFacts
from holobazaar.scenes.models import Display, DisplayFile, MarketFile
from holobazaar.scenes.yamlsource import PathKey, Problem, SourceDocument, read_yaml

ASSET_SUFFIXES = {".glb": "model/gltf-binary", ".png": "image/png", ".jpg": "image/jpeg",
                  ".jpeg": "image/jpeg", ".webp": "image/webp"}

# Sample values of a template binding another domain provides at run time
# (SceneService.add_provider), so that validation can render templates that use it.
SampleBinding = Callable[[MarketFile, Display], Binding]

# A market's processed (uploaded) assets that are ready, by name (the assets domain's
# stored assets, handed in by the assembly): names a display may use besides assets/.
StoredAssets = Callable[[str], Mapping[str, AssetRef]]


class ShowLoader(Protocol):
    """Reads a market's show files (holobazaar.shows.loader.load_shows): show id -> show,
    problems appended to `problems`."""

    def __call__(self, market_dir: Path, content_dir: Path, market: MarketFile,
                 displays: dict[str, Display], problems: list[Problem]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AssetFile:
    name: str
    path: Path
    sha256: str
    suffix: str
    size: int

    @property
    def media_type(self) -> str:
        return ASSET_SUFFIXES.get(self.suffix) or mimetypes.guess_type(self.path.name)[0] or ""

    @property
    def url(self) -> str:
        return f"/assets/{self.sha256}{self.suffix}"

    def ref(self) -> AssetRef:
        return AssetRef(self.name, self.url, self.media_type, self.size)


@dataclass(frozen=True)
class MarketContent:
    file: str
    market: MarketFile
    displays: dict[str, Display]
    display_files: dict[str, str]
    shows: dict[str, Any] = field(default_factory=dict)  # id -> holobazaar.shows.models.Show

    @property
    def id(self) -> str:
        return self.market.market.id

    def seed_items(self) -> dict[str, ItemFacts]:
        currency = self.market.market.currency
        return {
            i.sku: ItemFacts(i.sku, i.name, i.price, currency, i.unit, i.stock, i.status, i.farm)
            for i in self.market.items
        }


@dataclass
class Content:
    root: Path
    markets: dict[str, MarketContent] = field(default_factory=dict)
    assets: dict[str, AssetFile] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Worth a curator's look but not an error (e.g. text placed over other text).
    warnings: list[Problem] = field(default_factory=list)
    # The sample bindings templates were rendered with (checks of drafts use them too).
    samples: Mapping[str, SampleBinding] = field(default_factory=dict)
    # The market's ready uploads by name (None: only files under assets/ are known).
    stored: StoredAssets | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def asset_refs(self) -> dict[str, AssetRef]:
        return {name: a.ref() for name, a in self.assets.items()}

    def market_asset_refs(self, market_id: str) -> dict[str, AssetRef]:
        """What a display of the market may name: the files, overlaid by its uploads (as
        SceneService.asset_refs composes them)."""
        stored = self.stored(market_id) if self.stored is not None else {}
        return {**self.asset_refs(), **stored}

    def asset_by_hash(self, sha256: str) -> AssetFile | None:
        for asset in self.assets.values():
            if asset.sha256 == sha256:
                return asset
        return None

    def report(self) -> str:
        return "\n".join(str(p) for p in sorted(self.problems))


def scenes_root(directory: Path) -> Path:
    """`validate DIR` accepts the content folder or its scenes/ folder."""
    return directory / "scenes" if (directory / "scenes").is_dir() else directory


def load_content(content_dir: Path, *, shows: ShowLoader | None = None,
                 samples: Mapping[str, SampleBinding] | None = None,
                 stored: StoredAssets | None = None) -> Content:
    """The content folder, checked. `shows` reads each market's shows (None: none are
    read); `samples`: the template bindings other domains provide, by name, with sample
    values (a template using a name not given is an error); `stored`: each market's ready
    uploads (a display may name them as it names files under assets/)."""
    content_dir = Path(content_dir)
    content = Content(root=content_dir, samples=dict(samples or {}), stored=stored)
    content.assets = _index_assets(content_dir / "assets", content.problems)
    root = scenes_root(content_dir)
    if not root.is_dir():
        content.problems.append(Problem(str(root), None, "", "scenes folder not found"))
        return content
    market_files = sorted(root.glob("*/market.yaml"))
    if not market_files:
        content.problems.append(Problem(str(root), None, "", "no scenes/<market>/market.yaml"))
    for market_path in market_files:
        market = _load_market(market_path, content_dir, content, shows)
        if market is None:
            continue
        if market.id in content.markets:
            content.problems.append(
                Problem(market.file, None, "market.id", f"market {market.id!r} defined twice")
            )
            continue
        content.markets[market.id] = market
    return content


def _validate(doc: SourceDocument, model: type[BaseModel], problems: list[Problem]):
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "expected a mapping at the top of the file"))
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        from holobazaar.scenes.yamlsource import pydantic_problems

        problems.extend(pydantic_problems(doc, exc))
        return None


def _load_market(path: Path, content_dir: Path, content: Content,
                 load_shows: ShowLoader | None) -> MarketContent | None:
    problems = content.problems
    doc = read_yaml(path, content_dir)
    if isinstance(doc, Problem):
        problems.append(doc)
        return None
    market = _validate(doc, MarketFile, problems)
    if market is None:
        return None
    before = len(problems)
    _check_market_refs(doc, market, problems)
    problems.extend(doc.problem(p, m) for p, m in schedule.market_problems(market))

    displays: dict[str, Display] = {}
    display_files: dict[str, str] = {}
    seed: dict[str, ItemFacts] | None = None
    for display_path in sorted((path.parent / "displays").glob("*.yaml")):
        ddoc = read_yaml(display_path, content_dir)
        if isinstance(ddoc, Problem):
            problems.append(ddoc)
            continue
        parsed = _validate(ddoc, DisplayFile, problems)
        if parsed is None:
            continue
        display = parsed.display
        if display.id in displays:
            problems.append(ddoc.problem(("display", "id"), f"display {display.id!r} is "
                                         f"already defined in {display_files[display.id]}"))
            continue
        if seed is None:  # once per market: per display it was displays x items
            seed = MarketContent(doc.file, market, {}, {}).seed_items()
        _check_display(ddoc, market, display, content, problems, seed)
        displays[display.id] = display
        display_files[display.id] = ddoc.file
    shows = ({} if load_shows is None
             else load_shows(path.parent, content_dir, market, displays, problems))
    if len(problems) > before:
        return None
    return MarketContent(doc.file, market, displays, display_files, shows)


def _check_market_refs(doc: SourceDocument, market: MarketFile, problems: list[Problem]) -> None:
    farms = {f.id for f in market.farms}
    for key, ids in (("zones", [z.id for z in market.zones]),
                     ("farms", [f.id for f in market.farms]),
                     ("items", [i.sku for i in market.items])):
        seen: set[str] = set()
        for index, ident in enumerate(ids):
            if ident in seen:
                problems.append(doc.problem((key, index), f"{ident!r} is defined twice"))
            seen.add(ident)
    for index, item in enumerate(market.items):
        if item.farm and item.farm not in farms:
            problems.append(doc.problem(("items", index, "farm"), f"unknown farm {item.farm!r}"))
    languages = market.market.languages
    problems.extend(doc.problem(path, message) for path, message in translation_problems(
        market.market, ("market",), languages))
    for key, entries in (("zones", market.zones), ("farms", market.farms)):
        for index, entry in enumerate(entries):
            problems.extend(doc.problem(path, message) for path, message in
                            translation_problems(entry, (key, index), languages))


def translation_problems(source: Any, path: PathKey,
                         languages: list[str]) -> Iterator[tuple[PathKey, str]]:
    """A translation into a language the market does not offer (or into its default
    language, which is the text itself), and a translated template's syntax error."""
    for language, fields in (getattr(source, "translations", None) or {}).items():
        where = (*path, "translations", language)
        if language not in languages[1:]:
            yield where, (f"{language!r} is not one of the market's other languages "
                          f"({', '.join(languages[1:]) or 'none'}): add it to market.yaml's "
                          "market.languages" if language != languages[0] else
                          f"{language!r} is the market's default language: the text itself")
            continue
        for name, text in fields:
            if isinstance(text, str) and (error := templates.check_syntax(text)):
                yield (*where, name), error


def _node_paths(raw_nodes: Any, prefix: PathKey) -> Iterator[tuple[str | None, PathKey]]:
    for index, raw in enumerate(raw_nodes or []):
        if isinstance(raw, dict):
            yield raw.get("id"), (*prefix, index)
            yield from _node_paths(raw.get("children"), (*prefix, index, "children"))


def _check_display(
    doc: SourceDocument, market: MarketFile, display: Display, content: Content,
    problems: list[Problem], seed: dict[str, ItemFacts] | None = None,
) -> None:
    zones = {z.id for z in market.zones}
    farms = {f.id for f in market.farms}
    skus = {i.sku for i in market.items}
    base: PathKey = ("display",)
    if display.zone not in zones:
        problems.append(doc.problem((*base, "zone"), f"unknown zone {display.zone!r}"))
    if display.farm and display.farm not in farms:
        problems.append(doc.problem((*base, "farm"), f"unknown farm {display.farm!r}"))
    for index, sku in enumerate(display.items):
        if sku not in skus:
            problems.append(doc.problem((*base, "items", index), f"unknown item {sku!r}"))

    node_paths = dict(_node_paths(doc.data["display"].get("nodes"), (*base, "nodes")))
    from holobazaar.scenes.models import ImageNode, ModelNode, iter_nodes

    template_fields = ("text", "label", "alt", "title", "body")
    refs = content.market_asset_refs(market.market.id)
    for node, _parent in iter_nodes(display.nodes):
        path = node_paths.get(node.id, (*base, "nodes"))
        if isinstance(node, ModelNode | ImageNode) and (
                problem := _asset_problem(node.asset, node.kind, refs.get(node.asset))):
            problems.append(doc.problem((*path, "asset"), problem))
        if node.item is not None and node.item not in skus:
            problems.append(doc.problem((*path, "item"), f"unknown item {node.item!r}"))
        for name in template_fields:
            text = getattr(node, name, None)
            if isinstance(text, str) and (error := templates.check_syntax(text)):
                problems.append(doc.problem((*path, name), error))
        problems.extend(doc.problem(p, m) for p, m in translation_problems(
            node, path, market.market.languages))
    for name in ("title", "description"):
        if error := templates.check_syntax(getattr(display, name)):
            problems.append(doc.problem((*base, name), error))
    problems.extend(doc.problem(p, m) for p, m in translation_problems(
        display, base, market.market.languages))

    problems.extend(doc.problem(p, m) for p, m in schedule.display_problems(market, display))
    if any(p.file == doc.file for p in problems):
        return
    # Render once with the seed inventory: undefined names and bad filters show up here.
    if seed is None:
        seed = MarketContent(doc.file, market, {}, {}).seed_items()
    bindings = sample_bindings(market, display, content.samples)
    state, errors = compose_display(market, display, seed, refs, bindings)
    for found in errors:
        path = node_paths.get(found.node, base) if found.node else base
        problems.append(doc.problem((*path, found.field), found.message))
    for language in market.market.languages[1:]:  # once per language (its translations)
        _, more = compose_display(market, display, seed, refs, bindings, language=language)
        for found in (e for e in more if e not in errors):
            path = node_paths.get(found.node, base) if found.node else base
            problems.append(doc.problem((*path, "translations", language, found.field),
                                        found.message))
    for index, variant in enumerate(display.variants):  # and once per variant
        _, errors = compose_display(market, display, seed, refs, bindings,
                                    variant=variant.id)
        where = (*base, "variants", index)
        problems.extend(doc.problem((*where, "nodes", e.node, e.field) if e.node else
                                    (*where, e.field), e.message) for e in errors)
    from holobazaar.scenes.placement import overlapping

    for a, b in overlapping(state):
        content.warnings.append(doc.problem(node_paths.get(b, base), (
            f"text blocks {a!r} and {b!r} overlap as placed: the client's layout will move "
            f"{b!r} (docs/scene-format.md, Layout)")))


def _asset_problem(name: str, kind: str, ref: AssetRef | None) -> str | None:
    """Why a model or image node cannot show asset `name` (None: it can)."""
    if ref is None:
        return (f"unknown asset {name!r} (no such file under assets/ and no ready upload "
                "of the market)")
    wanted = "model/" if kind == "model" else "image/"
    if not ref.media_type.startswith(wanted):
        what = Path(ref.url).suffix or ref.media_type
        return f"asset {name!r} is a {what} file, not a {kind}"
    return None


def draft_problems(content: Content, market: MarketFile, display: Display, data: Any,
                   file: str) -> list[Problem]:
    """The cross-file checks the loader makes of a display file (zone, farm, items, assets,
    templates, a render with the seed inventory), for a draft that is not on disk (the
    studio's preview): what a save of it would be refused with. Warnings are dropped."""
    problems: list[Problem] = []
    scratch = Content(root=content.root, assets=content.assets, samples=content.samples,
                      stored=content.stored)
    _check_display(SourceDocument(file, data), market, display, scratch, problems)
    return problems


def sample_bindings(market: MarketFile, display: Display,
                    samples: Mapping[str, SampleBinding]) -> dict[str, Binding]:
    """The bindings validation renders `display`'s templates with."""
    return {name: sample(market, display) for name, sample in samples.items()}


def _index_assets(assets_dir: Path, problems: list[Problem]) -> dict[str, AssetFile]:
    """Every model and image under assets/, by file stem. Generated demo models live in
    assets/build/ (made by `make`), hand-made images anywhere else under assets/."""
    index: dict[str, AssetFile] = {}
    if not assets_dir.is_dir():
        return index
    for path in sorted(assets_dir.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in ASSET_SUFFIXES or not path.is_file():
            continue
        name = path.stem
        if name in index:
            problems.append(Problem(str(path), None, "", f"asset name {name!r} is also used by "
                                    f"{index[name].path}"))
            continue
        data = path.read_bytes()
        index[name] = AssetFile(name, path, hashlib.sha256(data).hexdigest(), suffix, len(data))
    return index
