"""The installed `archnb` console script."""
import shutil
import subprocess


def run(*args):
    return subprocess.run([shutil.which("archnb"), *args], capture_output=True, text=True)


def test_presets_table_and_detail():
    table = run("presets")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[0] == "preset"
    detail = run("presets", "--preset", "smollm2-135m")
    assert detail.returncode == 0 and "134,515,008" in detail.stdout


def test_bad_preset_is_one_clear_line():
    res = run("presets", "--preset", "no-such-preset")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().startswith("archnb presets: error: unknown preset 'no-such-preset'")
    assert "Traceback" not in res.stderr
