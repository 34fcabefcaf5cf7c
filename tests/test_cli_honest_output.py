"""What the command and the docs say is true: ``recover --json`` is always an object,
``--size large`` says what it makes, and no text points to a document the repository
does not have."""

import json
from pathlib import Path

from strongroom.demo.plan import plan_demo_site

ROOT = Path(__file__).resolve().parents[1]


def test_recover_json_is_an_object_saying_nothing_was_recovered(cli, site):
    result = cli("recover", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == {"recovered": None}


def test_recover_json_says_what_was_recovered(cli, config, site):
    backup_id = cli("backup").output.strip()
    journal = config.backups_dir / ".journal.json"
    journal.write_text(json.dumps({"operation": "restore", "scope": "site", "project": None, "step": "reserved",
                                   "backup": backup_id, "pre_restore": None}))
    result = cli("recover", "--json")
    assert result.exit_code == 0, result.output
    recovered = json.loads(result.output)["recovered"]
    assert recovered["backup"] == backup_id and recovered["outcome"]


def test_the_size_options_help_gives_the_figures_the_plan_makes(cli):
    shown = " ".join(cli("demo", "init", "--help").output.split())
    assert "about 65 MB with the default numbers" in shown and "about 2 GB with --projects 40 --editions 5" in shown
    default = plan_demo_site(size="large").site.total_bytes
    benchmark = plan_demo_site(projects=40, editions=5, size="large").site.total_bytes
    assert 55e6 <= default <= 75e6 and 1.9e9 <= benchmark <= 2.3e9


def test_no_text_of_the_repository_points_to_a_design_document_it_does_not_have():
    missing = "DESIGN" + ".md"  # spelled apart, so that this file does not name it
    assert not (ROOT / missing).exists()
    texts = [*ROOT.glob("*.md"), *(ROOT / "docs").rglob("*.md"), *(ROOT / "src").rglob("*.py"),
             *(ROOT / "src").rglob("*.json"), *(ROOT / "src").rglob("*.html"), *(ROOT / "tests").rglob("*.py")]
    pointing = [str(p.relative_to(ROOT)) for p in texts if missing in p.read_text(errors="replace")]
    assert pointing == []
