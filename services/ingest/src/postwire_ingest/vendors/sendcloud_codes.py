"""SendCloud v2's answer codes, and which postwire error becomes which.

Codes (SendCloud v2 "API 返回码"; the nearest one where postwire's reason differs):

    =====  ===============================  ============================================
    code   SendCloud's text                 when
    =====  ===============================  ============================================
    40005  认证失败                         apiUser/apiKey missing or wrong
    40015  标签ID格式错误                   labelId/labelName not a valid label
    40201  模版调用名称invokeName不能为空   sendtemplate without templateInvokeName
    40801  发信人地址from不能为空           from missing
    40802  发信人地址from格式错误           from bad, not a sender of the account, or its
                                            domain not verified
    40804  发信人名称fromName格式错误       fromName bad
    40805  收件人地址不能为空               no recipient
    40806  收件人地址数组中, 存在非法地址   a bad address in to
    40807  收件人地址的数目不能超过100      more than 100 recipients in all
    40808  邮件主题subject不能为空          subject missing (mail/send)
    40809  邮件主题subject格式错误          subject too long or with control characters
    40811  回复地址replyto格式错误          a bad replyTo address
    40812  xsmtpapi不能为空                 sendtemplate with neither xsmtpapi nor to
    40813  xsmtpapi格式错误                 not a JSON object, or unsupported keys
    40815  xsmtpapi必须含有to字段           xsmtpapi without to (mail/send)
    40816  xsmtpapi中to字段的解析值不能为空 xsmtpapi to empty
    40817  xsmtpapi解析错误                 sub values not one per to; a template
                                            parameter without a value
    40819  附件大小不能超过10485760字节     the message passes 10 MB
    40820  此用户没有使用地址列表的权限     useAddressList=true (no address lists)
    40823  邮件模板不存在                   no template of that name
    40824  模板未通过审核                   template waiting for or refused approval
    40825  邮件模板和API_USER类型不匹配     trigger template, batch API user or reverse
    40827  xsmtpapi中to数组长度不能超过100  more than 100 xsmtpapi recipients
    40853  cc地址格式错误                   a bad address in cc
    40856  bcc地址格式错误                  a bad address in bcc
    40859  respEmailId格式错误              respEmailId not true/false
    40867  处理附件发生异常                 a bad attachment, more than 100 of them
    40869  headers格式错误                  not a JSON object of strings, a header
                                            postwire sets itself, or twice the same
    40870  html和plain不能同时为空          no body
    40879  回复地址replyto个数不能超过3个   more than 3 replyTo addresses
    40880  xsmtpapi中to字段含有非法邮箱格式 a bad address in xsmtpapi to
    40901  邮件发送失败                     refused by an account limit (labels, ...)
    40904  额度检查失败                     rate limit
    501    服务器异常                       anything else
    6001   你没有权限访问                   contentSummary, gzipCompress, cc/bcc on
                                            sendtemplate: features postwire lacks
    =====  ===============================  ============================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from postwire_common import errors


class Refused(Exception):
    """A SendCloud error answer: its code and text, and what postwire found wrong."""

    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(code.status, detail)
        self.code = code
        self.detail = detail

    def body(self) -> dict[str, Any]:
        text = self.code.text
        message = f"{text} ({self.detail})" if self.detail and self.code is not AUTH else text
        return {"result": False, "statusCode": self.code.status, "message": message, "info": {}}


@dataclass(frozen=True)
class Code:
    status: int
    text: str

    def __call__(self, detail: str = "") -> Refused:
        return Refused(self, detail)


AUTH = Code(40005, "认证失败")
LABEL_BAD = Code(40015, "标签ID格式错误")
INVOKE_NAME_EMPTY = Code(40201, "模版调用名称invokeName不能为空")
FROM_EMPTY = Code(40801, "发信人地址from不能为空")
FROM_BAD = Code(40802, "发信人地址from格式错误")
FROM_NAME_BAD = Code(40804, "发信人名称fromName格式错误")
TO_EMPTY = Code(40805, "收件人地址不能为空")
TO_BAD = Code(40806, "收件人地址数组中, 存在非法地址")
TO_MANY = Code(40807, "收件人地址的数目不能超过100")
SUBJECT_EMPTY = Code(40808, "邮件主题subject不能为空")
SUBJECT_BAD = Code(40809, "邮件主题subject格式错误")
REPLY_TO_BAD = Code(40811, "回复地址replyto格式错误")
XSMTPAPI_EMPTY = Code(40812, "xsmtpapi不能为空")
XSMTPAPI_BAD = Code(40813, "xsmtpapi格式错误")
XSMTPAPI_NO_TO = Code(40815, "xsmtpapi必须含有to字段")
XSMTPAPI_TO_EMPTY = Code(40816, "xsmtpapi中to字段的解析值不能为空")
XSMTPAPI_PARSE = Code(40817, "xsmtpapi解析错误")
TOO_LARGE = Code(40819, "附件大小不能超过10485760字节")
NO_ADDRESS_LIST = Code(40820, "此用户没有使用地址列表的权限")
TEMPLATE_MISSING = Code(40823, "邮件模板不存在")
TEMPLATE_UNAPPROVED = Code(40824, "模板未通过审核")
TEMPLATE_TYPE = Code(40825, "邮件模板和API_USER类型不匹配")
XSMTPAPI_TO_MANY = Code(40827, "xsmtpapi中to数组长度不能超过100")
CC_BAD = Code(40853, "cc地址格式错误")
BCC_BAD = Code(40856, "bcc地址格式错误")
RESP_EMAIL_ID_BAD = Code(40859, "respEmailId格式错误")
ATTACHMENT_BAD = Code(40867, "处理附件发生异常")
HEADERS_BAD = Code(40869, "headers格式错误")
BODY_EMPTY = Code(40870, "html和plain不能同时为空")
REPLY_TO_MANY = Code(40879, "回复地址replyto个数不能超过3个")
XSMTPAPI_TO_BAD = Code(40880, "xsmtpapi中to字段含有非法邮箱格式")
SEND_FAILED = Code(40901, "邮件发送失败")
QUOTA = Code(40904, "额度检查失败")
SERVER = Code(501, "服务器异常")
NOT_SUPPORTED = Code(6001, "你没有权限访问")

# What send() can still refuse once every field was checked on its own.
_AFTER_CHECKS: dict[type[errors.PostwireError], Code] = {
    errors.AuthorizationFailed: AUTH,
    errors.InvalidEmail: TO_BAD,
    errors.EmptyValue: BODY_EMPTY,
    errors.MissingMacros: XSMTPAPI_PARSE,
    errors.SizeExceeded: TOO_LARGE,
    errors.NotFound: TEMPLATE_MISSING,
    errors.InvalidPermission: TEMPLATE_TYPE,
    errors.NotAvailable: SEND_FAILED,
    errors.QuotaExceeded: QUOTA,
}


def translate(exc: errors.PostwireError, *, templated: bool) -> Refused:
    if isinstance(exc, errors.InvalidValue):
        # Left after the checks: a variable's value breaking the subject, or the subject.
        return (XSMTPAPI_PARSE if templated else SUBJECT_BAD)(exc.description)
    return _AFTER_CHECKS.get(type(exc), SERVER)(exc.description)


@contextmanager
def refusing(code: Code, *kinds: type[errors.PostwireError]) -> Iterator[None]:
    """Domain errors of ``kinds`` (default: any) raised inside answered as ``code``."""
    caught = kinds or (errors.PostwireError,)
    try:
        yield
    except caught as exc:
        raise code(exc.description) from None
