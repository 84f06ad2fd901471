"""XAPI error codes with the parameter lists real XAPI sends (ocaml/idl/datamodel_errors.ml)."""

from __future__ import annotations


class XapiError(Exception):
    """A structured XAPI failure: ErrorDescription is [code, *params], params are strings."""

    def __init__(self, code: str, *params: object) -> None:
        self.code = code
        self.params = [str(p) for p in params]
        super().__init__(code, *self.params)

    @property
    def description(self) -> list[str]:
        return [self.code, *self.params]

    def __str__(self) -> str:
        return " ".join(self.description)


class HttpError(Exception):
    """Malformed request at the HTTP/RPC level: XAPI answers HTTP 500 with an HTML body."""


def session_authentication_failed(user: str) -> XapiError:
    return XapiError("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")


def session_invalid(session: str) -> XapiError:
    return XapiError("SESSION_INVALID", session)


def handle_invalid(cls: str, ref: str) -> XapiError:
    return XapiError("HANDLE_INVALID", cls, ref)


def uuid_invalid(cls: str, uuid: str) -> XapiError:
    return XapiError("UUID_INVALID", cls, uuid)


def method_unknown(method: str) -> XapiError:
    return XapiError("MESSAGE_METHOD_UNKNOWN", method)


def parameter_count_mismatch(method: str, expected: int, received: int) -> XapiError:
    return XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, expected, received)


def vm_bad_power_state(vm: str, expected: list[str], actual: str) -> XapiError:
    # Record_util.power_to_string: lowercase, several expected states joined by ", "
    return XapiError("VM_BAD_POWER_STATE", vm, ", ".join(s.lower() for s in expected), actual.lower())


def other_operation_in_progress(cls: str, current: list[tuple[str, str]], ref: str) -> XapiError:
    # xapi_vm_lifecycle.report_concurrent_operations_error: [class, ref, op, task], several
    # operations as "{a,b}" with their tasks as "{t1,t2}"
    if len(current) == 1:
        key, op = current[0]
    else:
        key = "{" + ",".join(k for k, _ in current) + "}"
        op = "{" + ",".join(o for _, o in current) + "}"
    return XapiError("OTHER_OPERATION_IN_PROGRESS", cls, ref, op, key)


def not_implemented(method: str) -> XapiError:
    return XapiError("NOT_IMPLEMENTED", method)


def host_not_enough_free_memory(needed: int, available: int) -> XapiError:
    return XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", needed, available)


def vm_requires_sr(vm: str, sr: str) -> XapiError:
    return XapiError("VM_REQUIRES_SR", vm, sr)


def host_is_slave(master_address: str) -> XapiError:
    return XapiError("HOST_IS_SLAVE", master_address)


def task_cancelled(task: str) -> XapiError:
    return XapiError("TASK_CANCELLED", task)


def operation_not_allowed(reason: str) -> XapiError:
    return XapiError("OPERATION_NOT_ALLOWED", reason)


def field_type_error(field: str) -> XapiError:
    return XapiError("FIELD_TYPE_ERROR", field)


def event_from_token_parse_failure(token: str) -> XapiError:
    return XapiError("EVENT_FROM_TOKEN_PARSE_FAILURE", token)


def event_subscription_parse_failure(sub: str) -> XapiError:
    return XapiError("EVENT_SUBSCRIPTION_PARSE_FAILURE", sub)


def internal_error(message: str) -> XapiError:
    return XapiError("INTERNAL_ERROR", message)
