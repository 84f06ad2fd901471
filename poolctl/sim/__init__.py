"""What stands in for real hypervisors: the XAPI simulator (xapi/), the libvirt test-driver
host (libvirt/) and the `--demo` pools built from them (demo.py)."""
