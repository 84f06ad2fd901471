"""The probe interval a user may choose, everywhere one is chosen (config, CLI, dialog).

Faster than 1 ms floods the guest; slower than 10 s cannot see a migration's pause. Kept apart
from the pinger (and imported without it) so the config file's checks stay cheap.
"""

DEFAULT_INTERVAL = 0.1
INTERVAL_MIN_S = 0.001
INTERVAL_MAX_S = 10.0
