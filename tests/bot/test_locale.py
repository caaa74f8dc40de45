"""System text lives in Babel catalogs: the template must list every string the code marks, and
the Vietnamese catalog must translate all of them (a stale catalog fails here)."""
import subprocess
import sys

from babel.messages.pofile import read_po

from tests.conftest import ROOT


def _ids(path):
    with open(path, "rb") as fh:
        return {m.id for m in read_po(fh) if m.id}


def test_template_is_current(tmp_path):
    out = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(ROOT / "babel.cfg"),
                    "-k", "_", "-k", "_l", "--no-location", "-o", str(out), str(ROOT)],
                   check=True, capture_output=True, cwd=ROOT)
    assert _ids(out) == _ids(ROOT / "locale" / "messages.pot"), "run `make catalogs` to refresh locale/"


def test_vietnamese_catalog_is_complete():
    with open(ROOT / "locale" / "vi" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        catalog = read_po(fh)
    template = _ids(ROOT / "locale" / "messages.pot")
    translated = {m.id for m in catalog if m.id and m.string}
    assert template <= translated, template - translated
