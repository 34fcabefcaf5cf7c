"""The panel's pages in the host's layout as it is: its own block names (``layout_blocks``)."""

import re

import pytest
from flask import Flask, request

from pure3d_host import PURE3D_BLOCKS, TEMPLATES
from strongroom.web import make_blueprint, service_factory_for
from strongroom.web.layouts import Layout
from web_support import prepared, users_of, web_data  # noqa: F401


def host_with_layout(config, blocks):
    app = Flask("host", template_folder=str(TEMPLATES))
    app.secret_key = "test"
    factory = service_factory_for(config)
    users = users_of(factory().database)
    app.register_blueprint(make_blueprint(factory, lambda: users.get(request.headers.get("X-Test-User", "")),
                                          layout="layout.html", layout_blocks=blocks))
    return app.test_client()


def right_column(html: str) -> str:
    return re.search(r'<div id="contentright">(.*?)</div>\s*</main>', html, re.DOTALL).group(1)


def test_every_page_shows_its_content_in_the_block_the_host_names(web_data):
    client = host_with_layout(web_data.config(), PURE3D_BLOCKS)
    site = web_data.backups["pilot"]["site"]
    pages = {"/backups/site": 'id="sr-panel"', f"/backups/site/{site}/details": 'id="sr-browse"',
             f"/backups/site/{site}/preview": 'id="sr-preview"', f"/backups/site/{site}/changes": 'id="sr-changes"',
             f"/backups/site/{site}/nothing": 'class="sr-error"'}
    for path, text in pages.items():
        html = client.get(path, headers={"X-Test-User": "admin"}).get_data(as_text=True)
        assert text in right_column(html), path
        assert 'href="/backups/static/strongroom.css"' in html.split("</head>")[0], path
        assert "sr-" not in re.search(r'<div id="contentleft">(.*?)</div>', html, re.DOTALL).group(1)


def test_a_part_the_host_has_no_block_for_is_left_out_and_its_own_block_kept(web_data):
    client = host_with_layout(web_data.config(), {"content": "contentleft"})
    html = client.get("/backups/site", headers={"X-Test-User": "admin"}).get_data(as_text=True)
    assert 'id="sr-panel"' in re.search(r'<div id="contentleft">(.*?)</div>\s*<div id="contentright">', html, re.DOTALL).group(1)
    assert '<meta name="host-head" content="kept">' in html and "strongroom.css" not in html
    assert "<title>Pure3D-shaped host</title>" in html


def test_the_default_blocks_are_title_head_and_content():
    source = Layout("base.html").source()
    assert "{% block title %}{{ self.sr_title() }}" in source and "{% block content %}{{ self.sr_content() }}" in source
    assert "{% block head %}{{ super() }}{{ self.sr_head() }}" in source


@pytest.mark.parametrize("blocks", [{"body": "main"}, {"content": "main body"}, {"content": "x %}{% y"},
                                    {"content": "sr_content"}])
def test_unknown_parts_and_names_that_are_not_block_names_are_refused(blocks):
    with pytest.raises(ValueError, match="layout blocks"):
        Layout("layout.html", blocks)
