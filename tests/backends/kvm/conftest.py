"""The KVM backend tests' fixtures (the demo pool on libvirt's test driver, a private daemon,
a real sshd in front of it)."""

from tests.support.kvm_helpers import demo, private_libvirtd
from tests.support.sshd import sshd

__all__ = ["demo", "private_libvirtd", "sshd"]
