"""The ceiling: the service's own SQL, driven straight into PostgreSQL by pgbench.

Each script holds the very statement a request sends (taken from shop.db, placeholders
rewritten as pgbench variables), one statement per transaction in autocommit as the
service runs it, with the info-heavy weights 80/10/10.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from shop.db.purchases import BUY
from shop.db.transfers import TRANSFER
from shop.db.users import WALLET

PICK = "\\set uid random(:lo, :hi)\n\\set peer random(1, :users)\n"


def scripts() -> dict[str, str]:
    """Return pgbench scripts named info, buy and send."""
    values = {
        "user_id": ":uid",
        "sender_id": ":uid",
        "recipient": "('load-' || :peer)",
        "amount": "1",
        "item": "'pen'",
        "price": "10",
        "attempt": "gen_random_uuid()",
    }

    def bind(sql: str) -> str:
        bound = re.sub(r"%\((\w+)\)s", lambda m: values[m.group(1)], sql)
        return " ".join(bound.split()) + ";\n"  # pgbench wants one line per statement

    return {
        "info": PICK + bind(WALLET.text),
        "buy": PICK + bind(BUY.text),
        "send": PICK + bind(TRANSFER.text),
    }


def pgbench_binary() -> str:
    try:
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if found is None:
        raise SystemExit("pgbench not found: install shop[embedded] or PostgreSQL's client tools")
    return found


def run_pgbench(database_url: str, users: int, clients: int, duration: int, ids: range) -> str:
    """Run the 80/10/10 mix and return pgbench's report."""
    parts = urlsplit(database_url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    with tempfile.TemporaryDirectory() as workdir:
        weights = {"info": 80, "buy": 10, "send": 10}
        files = []
        for name, text in scripts().items():
            path = Path(workdir) / f"{name}.sql"
            path.write_text(text)
            files += ["-f", f"{path}@{weights[name]}"]
        command = [
            pgbench_binary(), "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
            "-T", str(duration), "-D", f"lo={ids.start}", "-D", f"hi={ids.stop - 1}",
            "-D", f"users={users}", *files,
            "-h", host, "-p", str(parts.port or 5432), "-U", parts.username or "postgres",
            parts.path.lstrip("/") or "postgres",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{result.stderr}")
    return result.stdout
