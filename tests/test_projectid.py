"""Project ids: .kilocode/config.json wins, else the origin remote's repository name."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from reporter.store.projectid import origin_url, project_id, repo_name


@pytest.mark.parametrize(("url", "name"), [
    ("git@github.com:example-co/example-repo.git", "example-repo"),
    ("git@github.com:example-co/example-repo", "example-repo"),
    ("github.com:example-repo.git", "example-repo"),
    ("https://github.com/example-co/example-repo.git", "example-repo"),
    ("https://github.com/example-co/example-repo", "example-repo"),
    ("https://user:s3cr3t@github.com/example-co/example-repo.git", "example-repo"),
    ("https://oauth2:tok@gitlab.example.com/group/sub/example-repo.GIT", "example-repo"),
    ("ssh://git@git.example.com:2222/team/example-repo.git", "example-repo"),
    ("ssh://git@git.example.com:2222/example-repo.Git/", "example-repo"),
    ("https://github.com/example-co/example-repo/", "example-repo"),
    ("https://github.com/example-co/example-repo.git//", "example-repo"),
    ("git://host.example/example-repo.git", "example-repo"),
    ("file:///srv/git/example-repo.git", "example-repo"),
    ("/srv/git/example-repo.git", "example-repo"),
    ("https://github.com/example-co/example-repo.git?ref=main", "example-repo"),
    ("https://github.com", None),
])
def test_repo_name(url: str, name: str | None) -> None:
    assert repo_name(url) == name


def test_origin_url_only_origin_counts() -> None:
    config = """
[core]
    bare = false
[remote "upstream"]
    url = git@github.com:upstream/other-repo.git
[remote "origin"]  # comment
    fetch = +refs/heads/*:refs/remotes/origin/*
    url = "git@github.com:example-co/example-repo.git" ; trailing comment
[remote "fork"]
    url = git@github.com:me/forked.git
"""
    assert origin_url(config) == "git@github.com:example-co/example-repo.git"
    assert origin_url('[remote "upstream"]\n url = x\n') is None


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null",
                        "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    git("remote", "add", "upstream", "https://github.com/upstream/not-this.git", cwd=root)
    git("remote", "add", "origin", "ssh://git@git.example.com:2222/team/Example-Repo.GIT/",
        cwd=root)
    return root


def test_origin_of_a_real_repository(repo: Path) -> None:
    assert project_id(repo) == "Example-Repo"
    deep = repo / "src" / "pkg" / "sub"
    deep.mkdir(parents=True)
    (deep / "file.py").write_text("", encoding="utf-8")
    assert project_id(deep) == "Example-Repo"
    assert project_id(deep / "file.py") == "Example-Repo"


def test_kilocode_config_wins(repo: Path) -> None:
    (repo / ".kilocode").mkdir()
    (repo / ".kilocode" / "config.json").write_text(
        json.dumps({"project": {"id": "my-project"}}), encoding="utf-8")
    deep = repo / "a" / "b"
    deep.mkdir(parents=True)
    assert project_id(deep) == "my-project"


@pytest.mark.parametrize("content", ["{not json", '{"project": 5}', '{"other": {}}',
                                     '{"project": {"id": ""}}', "[]"])
def test_broken_kilocode_config_falls_back_and_warns(repo: Path, content: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    (repo / ".kilocode").mkdir()
    (repo / ".kilocode" / "config.json").write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert project_id(repo) == "Example-Repo"
    assert any("config.json" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_worktree(repo: Path, tmp_path: Path) -> None:
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
        "--allow-empty", "-m", "init", cwd=repo)
    worktree = tmp_path / "wt"
    git("worktree", "add", "-q", str(worktree), cwd=repo)
    assert (worktree / ".git").is_file()
    (worktree / "deep").mkdir()
    assert project_id(worktree / "deep") == "Example-Repo"


def test_no_remote_and_no_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    git("init", "-q", cwd=plain)
    assert project_id(plain) is None
    git("remote", "add", "upstream", "git@github.com:a/b.git", cwd=plain)
    assert project_id(plain) is None
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / ".git").write_text("gitdir: /nonexistent/path\n", encoding="utf-8")
    assert project_id(lonely) is None
