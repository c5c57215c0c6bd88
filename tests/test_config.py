import pytest

from config import ConfigError, load_config


def test_environment_overrides_defaults(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "PORT": "8123", "MAX_UPLOAD_MB": "7", "KARAOKE_DIR": str(tmp_path / "k")}
    cfg = load_config(environ=env)
    assert cfg["PORT"] == 8123
    assert cfg["UPLOAD_DIR"] == str(tmp_path / "uploads")
    assert cfg["KARAOKE_DIR"] == str(tmp_path / "k")
    assert cfg["DATABASE_URL"] == f"sqlite:///{tmp_path / 'instance' / 'karaoke.sqlite3'}"
    assert cfg["MAX_CONTENT_LENGTH"] > 7 * 1024 * 1024


def test_test_mapping_wins_over_environment(tmp_path):
    cfg = load_config({"PORT": 1}, environ={"PORT": "2", "DATA_DIR": str(tmp_path)})
    assert cfg["PORT"] == 1


def test_production_refuses_default_secrets(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(environ={"APP_ENV": "production", "DATA_DIR": str(tmp_path)})
    cfg = load_config(environ={"APP_ENV": "production", "DATA_DIR": str(tmp_path),
                               "SECRET_KEY": "x" * 32, "JWT_SECRET_KEY": "y" * 32})
    assert cfg["APP_ENV"] == "production"
