"""The command line: subcommands, help, configuration checks, start-up refusals."""

import shutil

import pytest

from conftest import REPO

SUBCOMMANDS = ["serve", "config", "migrate", "tenant", "version"]


def write(path, text):
    path.write_text(text)
    return path


def test_help_lists_subcommands(run_cli):
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in SUBCOMMANDS:
        assert f"  {command} " in proc.stdout, proc.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(run_cli, command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: bulwark {command}"), proc.stdout


def test_version(run_cli):
    proc = run_cli("version")
    assert proc.returncode == 0 and proc.stdout.startswith("bulwark "), proc


@pytest.mark.parametrize("args", [("frobnicate",), ()], ids=["unknown", "none"])
def test_unknown_or_missing_subcommand(run_cli, args):
    proc = run_cli(*args)
    assert proc.returncode == 2, proc
    assert "usage: bulwark" in proc.stderr
    if args:
        assert "frobnicate" in proc.stderr


def test_config_check_accepts_good_file(run_cli, tmp_path):
    conf = write(tmp_path / "good.conf", "[server]\nport = 9443\n\n[limits]\nrate_burst = 5\n")
    proc = run_cli("config", "check", "-c", conf)
    assert proc.returncode == 0, proc.stderr
    assert "configuration OK" in proc.stdout


def test_config_check_unknown_key_names_file_line_key(run_cli, tmp_path):
    conf = write(tmp_path / "typo.conf", "[server]\nport = 9443\nportt = 9444\n")
    proc = run_cli("config", "check", "-c", conf)
    assert proc.returncode == 1, proc
    assert str(conf) in proc.stderr and ":3:" in proc.stderr and "portt" in proc.stderr, \
        proc.stderr


@pytest.mark.parametrize("line", ["port = 99999", "port = abc", "port = 0", "port = 8443x",
                                  "port ="])
def test_config_check_bad_value_names_file_line_key(run_cli, tmp_path, line):
    conf = write(tmp_path / "bad.conf", f"[server]\nbind = 127.0.0.1\n{line}\n")
    proc = run_cli("config", "check", "-c", conf)
    assert proc.returncode == 1, proc
    assert f"{conf}:3:" in proc.stderr and "'port'" in proc.stderr, proc.stderr


def test_config_check_unknown_section(run_cli, tmp_path):
    conf = write(tmp_path / "section.conf", "[server]\nport = 9443\n[servr]\nbind = ::1\n")
    proc = run_cli("config", "check", "-c", conf)
    assert proc.returncode == 1, proc
    assert f"{conf}:4:" in proc.stderr and "servr" in proc.stderr, proc.stderr


def test_config_check_missing_file(run_cli, tmp_path):
    proc = run_cli("config", "check", "-c", tmp_path / "absent.conf")
    assert proc.returncode == 1, proc
    assert "absent.conf" in proc.stderr


def test_environment_overrides_file(run_cli, tmp_path):
    conf = write(tmp_path / "env.conf", "[server]\nport = 9443\n")
    proc = run_cli("config", "show", "-c", conf, env={"BULWARK_SERVER_PORT": "1234"})
    assert proc.returncode == 0, proc.stderr
    assert "server.port = 1234" in proc.stdout.splitlines(), proc.stdout


@pytest.mark.parametrize("var, value", [("BULWARK_SERVER_NOPE", "1"),
                                        ("BULWARK_SERVER_PORT", "abc"),
                                        ("BULWARK_LIMITS_RATE_BURST", "0")])
def test_bad_environment_variable_refused(run_cli, var, value):
    proc = run_cli("config", "check", env={var: value})
    assert proc.returncode == 1, proc
    assert var in proc.stderr, proc.stderr


def test_config_show_lists_defaults(run_cli):
    proc = run_cli("config", "show")
    assert proc.returncode == 0, proc.stderr
    for line in ("server.port = 8443", "limits.rate_per_second = 200", "server.bind = 127.0.0.1"):
        assert line in proc.stdout.splitlines(), proc.stdout


# --- serve refuses to start ------------------------------------------------------

def test_serve_missing_certificate(run_cli, server_config, tmp_path):
    missing = tmp_path / "no-such-cert.pem"
    proc = run_cli("serve", "-c", server_config(tls_cert=missing))
    assert proc.returncode != 0, proc
    assert str(missing) in proc.stderr, proc.stderr


def test_serve_missing_key(run_cli, server_config, tmp_path):
    missing = tmp_path / "no-such-key.pem"
    proc = run_cli("serve", "-c", server_config(tls_key=missing))
    assert proc.returncode != 0, proc
    assert str(missing) in proc.stderr, proc.stderr


def test_serve_refuses_world_readable_key(run_cli, server_config, tls_cert, tmp_path):
    key = tmp_path / "open-key.pem"
    shutil.copyfile(tls_cert.key, key)
    key.chmod(0o644)
    proc = run_cli("serve", "-c", server_config(tls_key=key))
    assert proc.returncode != 0, proc
    assert str(key) in proc.stderr and "readable" in proc.stderr, proc.stderr


def test_serve_refuses_key_of_another_certificate(run_cli, server_config, make_cert):
    other = make_cert("other")
    proc = run_cli("serve", "-c", server_config(tls_key=other.key))
    assert proc.returncode != 0, proc
    assert str(other.key) in proc.stderr, proc.stderr


def test_serve_refuses_bad_config(run_cli, tmp_path):
    conf = write(tmp_path / "typo.conf", "[limits]\nconnection_timout = 5\n")
    proc = run_cli("serve", "-c", conf)
    assert proc.returncode == 1, proc
    assert f"{conf}:2:" in proc.stderr and "connection_timout" in proc.stderr, proc.stderr


def test_example_config_passes_check(run_cli):
    example = REPO / "bulwark.conf.example"
    if not example.exists():
        pytest.skip("bulwark.conf.example not written yet")
    proc = run_cli("config", "check", "-c", example.name, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
