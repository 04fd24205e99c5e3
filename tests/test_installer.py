"""The set-up's installer: pip's settings handed to uv, and a real install of a wheel made here, through uv and
through pip, offline."""

import base64
import hashlib
import subprocess
import sys
import zipfile

import pytest

from companion.core import installer

LISTED = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/elsewhere'
global.constraint='/etc/xdg/pip/constraints.txt'
"""


def test_pips_settings_are_read_with_its_variables_over_its_files():
    settings = installer.pip_settings(LISTED)
    assert settings["find-links"] == ["/opt/wheels"]  # PIP_FIND_LINKS over the file's
    assert settings["extra-index-url"] == ["file:///opt/pypi/simple", "file:///opt/pypi-more/simple"]
    assert settings["constraint"] == ["/etc/xdg/pip/constraints.txt"]
    assert settings["cert"] == ["/etc/ssl/certs/ca-certificates.crt"]
    assert installer.pip_settings("") == {}


def test_uv_gets_every_source_pip_has_and_the_arguments_unchanged():
    command = installer.uv_command("/bin/uv", ["--no-deps", "-r", "x.txt"], installer.pip_settings(LISTED))
    assert command[:3] == ["/bin/uv", "pip", "install"]
    assert command[command.index("--python") + 1] == sys.executable and "--compile-bytecode" in command
    pairs = list(zip(command, command[1:]))
    assert ("--extra-index-url", "file:///opt/pypi/simple") in pairs
    assert ("--extra-index-url", "file:///opt/pypi-more/simple") in pairs
    assert ("--find-links", "/opt/wheels") in pairs and ("--find-links", "/elsewhere") not in pairs
    assert ("--constraint", "/etc/xdg/pip/constraints.txt") in pairs
    assert command[-3:] == ["--no-deps", "-r", "x.txt"]
    # Hash-pinned requirements: uv refuses a constraint without ==, and the hashes pin everything already.
    hashed = installer.uv_command("/bin/uv", ["--require-hashes", "-r", "x.txt"], installer.pip_settings(LISTED))
    assert "--constraint" not in hashed and "--find-links" in hashed


def _wheel(folder):
    """A one-module wheel, ``tinypkg 0.1``, with its RECORD (file hashes) as installers check it."""
    files = {"tinypkg/__init__.py": b"VALUE = 41 + 1\n",
             "tinypkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
             "tinypkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                            b"Tag: py3-none-any\n"}
    digest = lambda data: base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()  # noqa: E731
    record = "".join(f"{name},sha256={digest(data)},{len(data)}\n" for name, data in files.items())
    files["tinypkg-0.1.dist-info/RECORD"] = (record + "tinypkg-0.1.dist-info/RECORD,,\n").encode()
    path = folder / "tinypkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


@pytest.mark.parametrize("through", ["uv", "pip"])
def test_a_wheel_is_installed_into_a_target_folder_offline(through, tmp_path, monkeypatch):
    if through == "uv" and installer.uv() is None:
        pytest.skip("uv is not installed here (the set-up installs it where the registry has it)")
    if through == "pip":
        monkeypatch.setattr(installer, "uv", lambda: None)
    _wheel(tmp_path)
    target = tmp_path / "target"
    installer.install(["--quiet", "--no-index", "--find-links", str(tmp_path), "--no-deps", "--target", str(target),
                       "tinypkg==0.1"])
    assert (target / "tinypkg-0.1.dist-info").is_dir()
    found = subprocess.run([sys.executable, "-c", "import tinypkg; print(tinypkg.VALUE)"], capture_output=True,
                           text=True, env={"PYTHONPATH": str(target)})
    assert found.stdout.strip() == "42", found.stderr
