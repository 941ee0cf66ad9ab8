"""Writes the credentials file the server starts with: credentials.yml plus every
messaging channel of credentials.messaging.yml whose environment variables are all set.

The written file keeps the `${VARIABLE}` placeholders (Rasa fills them in when it
starts), so no secret ever lands on disk. A channel with only some of its variables
set is an error, not silently left out.

`make run` writes build/credentials.yml with it (tools/servers.py); by hand:
`python -m scripts.credentials OUT_FILE`.
"""
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Text

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def variables(settings: Dict) -> List[Text]:
    return sorted({name for value in settings.values() for name in PLACEHOLDER.findall(str(value))})


def messaging_channels(environ=os.environ) -> Dict:
    """The channels of credentials.messaging.yml whose variables are all set in `environ`."""
    messaging = yaml.safe_load((ROOT / "credentials.messaging.yml").read_text())
    enabled = {}
    for channel, settings in messaging.items():
        missing = [name for name in variables(settings) if not environ.get(name)]
        if not missing:
            enabled[channel] = settings
        elif len(missing) < len(variables(settings)):
            raise SystemExit(f"{channel} is half configured: set {', '.join(missing)} (or unset the others)")
    return enabled


def write_credentials(out: Path) -> None:
    enabled = messaging_channels()
    merged = {**yaml.safe_load((ROOT / "credentials.yml").read_text()), **enabled}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(merged, sort_keys=False))
    print(f"Messaging channels on: {', '.join(enabled) or 'none'} (see credentials.messaging.yml)")


if __name__ == "__main__":
    write_credentials(Path(sys.argv[1]))
