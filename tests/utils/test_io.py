

def test_written_files_get_the_users_normal_permissions(tmp_path):
    import os
    import stat

    from finetune_compare.utils.io import write_json

    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "metrics.json", {"a": 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by others, like a plain open()
        os.umask(0o077)
        assert stat.S_IMODE(write_json(tmp_path / "private.json", {}).stat().st_mode) == 0o600
    finally:
        os.umask(old)
