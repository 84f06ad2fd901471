"""The KVM backend tests' fixtures (the demo pool on libvirt's test driver, a private daemon)."""

from tests.support.kvm_helpers import demo, private_libvirtd

__all__ = ["demo", "private_libvirtd"]
