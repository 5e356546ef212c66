"""Every string the kiosk shows, in 中文 and English: one catalogue, switchable at run time.

    tr("sale.title", Language.ZH)                 -> "消费"
    tr("idle.reversals", Language.EN, count=2)    -> "2 reversal(s) wait for the host"

A key names one idea; values are filled with `str.format` names. The
language is the `Context`'s (F4 on the idle screen switches it). The
catalogue test renders every string in both languages with the CJK font
and refuses a missing glyph or a string wider than its box.
"""

from __future__ import annotations

from typing import Final

from firmware.txn.terms import Language, Text

__all__ = ["CATALOGUE", "SAMPLE_VALUES", "has_text", "tr"]

_T = Text

CATALOGUE: Final[dict[str, Text]] = {
    # common
    "colon": _T("：", ": "),
    "money.yuan": _T("{amount} 元", "CNY {amount}"),
    "money": _T("{currency} {amount}", "{currency} {amount}"),
    "key.enter": _T("确认", "OK"),
    "key.cancel": _T("取消", "Cancel"),
    "key.clear": _T("清除", "Clear"),
    "network.unknown": _T("主机未知", "Host ?"),
    "network.online": _T("主机在线", "Host online"),
    "network.offline": _T("主机离线", "Host offline"),
    # hints (the line above the keypad)
    "hint.idle": _T("确认键进入菜单 · F4 English", "OK: menu · F4 中文"),
    "hint.entry": _T("确认：下一步  清除：删除  取消：返回", "OK: next  Clear: delete  Cancel: back"),
    "hint.letters": _T("数字键多次按出字母 F1大小写/数字 F2下一个", "Tap keys for letters; F1 mode, F2 next"),
    "hint.choose": _T("数字键或▲▼选择，确认键进入", "Digit or ▲▼ to choose, OK to open"),
    "hint.confirm": _T("确认：继续  取消：返回", "OK: continue  Cancel: back"),
    "hint.done": _T("确认：完成", "OK: done"),
    "hint.receipt": _T("确认：查看签购单  取消：完成", "OK: see the receipt  Cancel: done"),
    "hint.preview": _T("▲▼翻页  确认：完成", "▲▼ scroll  OK: done"),
    "hint.insert": _T("请插卡  取消：返回", "Insert the card  Cancel: back"),
    "hint.working": _T("处理中  取消：中止", "Working  Cancel: stop"),
    "hint.pin": _T("确认：提交  取消：跳过", "OK: submit  Cancel: skip"),
    "hint.terms": _T("▲▼翻页  确认：同意", "▲▼ scroll  OK: agree"),
    "hint.detail": _T("F1撤销 F2退货 F3调整 ▲▼翻页", "F1 void F2 refund F3 adjust ▲▼"),
    "hint.status": _T("确认/F1：立即重试  ▲▼翻页", "OK/F1: retry now  ▲▼ scroll"),
    # soft keys (F1-F4 labels)
    "soft.sale": _T("消费", "Sale"),
    "soft.orders": _T("订单", "Orders"),
    "soft.status": _T("状态", "Status"),
    "soft.language": _T("English", "中文"),
    "soft.void": _T("撤销", "Void"),
    "soft.refund": _T("退货", "Refund"),
    "soft.adjust": _T("调整", "Adjust"),
    "soft.retry": _T("重试", "Retry"),
    "soft.merchant_copy": _T("商户联", "Merchant"),
    "soft.customer_copy": _T("客户联", "Customer"),
    "soft.print": _T("重打", "Print"),
    # idle
    "idle.terminal": _T("终端号 {tid}", "Terminal {tid}"),
    "idle.merchant": _T("商户号 {mid}", "Merchant {mid}"),
    "idle.network": _T("网络：{state}", "Network: {state}"),
    "idle.reversals": _T("{count}笔冲正待上送", "{count} reversal(s) wait for the host"),
    "idle.unsent": _T("{count}笔请求未上送", "{count} request(s) not sent yet"),
    "idle.pending": _T("{count}笔交易待主机应答", "{count} request(s) await an answer"),
    "idle.flagged": _T("{count}笔上送失败，请查看状态", "{count} failed: see Request status"),
    # menu
    "menu.title": _T("主菜单", "Main menu"),
    "menu.sale": _T("消费", "Sale"),
    "menu.void": _T("撤销订单", "Cancel order"),
    "menu.refund": _T("退货", "Refund"),
    "menu.adjust": _T("调整金额", "Adjust amount"),
    "menu.orders": _T("订单查询", "Orders"),
    "menu.status": _T("请求状态", "Request status"),
    "menu.settle": _T("结算", "Settlement"),
    "menu.signon": _T("签到", "Sign on"),
    # entry
    "entry.mode": _T("输入法：{mode}", "Input: {mode}"),
    "entry.optional": _T("（可不填）", " (optional)"),
    # work in progress
    "working.progress": _T("正在处理，请稍候…", "Processing, please wait…"),
    "working.elapsed": _T("已用时 {seconds} 秒", "{seconds} s elapsed"),
    "working.cancelling": _T("正在中止，等待卡片结束…", "Stopping: waiting for the card…"),
    "working.cannot_cancel": _T(
        "请求已发出，无法撤回；再按取消离开，结果可在请求状态查看",
        "Sent: cannot be called back. Cancel again to leave; see Request status",
    ),
    "working.looking_up": _T("正在查询…", "Looking up…"),
    # sale
    "sale.title": _T("消费", "Sale"),
    "sale.amount": _T("请输入金额", "Enter the amount"),
    "sale.amount_is": _T("金额", "Amount"),
    "sale.insert": _T("请插入银行卡", "Please insert the card"),
    "sale.order": _T("订单号 {order}", "Order {order}"),
    "sale.remove": _T("请取走卡片", "Please remove the card"),
    # PIN
    "pin.title": _T("输入密码", "Enter PIN"),
    "pin.prompt": _T("请持卡人输入密码", "Cardholder: enter your PIN"),
    "pin.tries": _T("剩余 {tries} 次", "{tries} tries left"),
    # results
    "result.approved": _T("交易成功", "Approved"),
    "result.declined": _T("交易失败", "Declined"),
    "result.waiting": _T("已保存，等待主机应答", "Saved: waiting for the host"),
    "result.cash_paid": _T("现金退款已登记，请当面付现", "Cash refund recorded: pay out now"),
    "result.notice": _T("客户通知已排队上送", "Customer notice queued for upload"),
    "result.reversal_pending": _T("冲正待上送，请查看请求状态", "A reversal waits: see Request status"),
    "outcome.APPROVED_OFFLINE": _T("脱机批准", "Approved offline"),
    "outcome.APPROVED_ONLINE": _T("联机批准", "Approved online"),
    "outcome.DECLINED_OFFLINE": _T("卡片脱机拒绝", "Declined by the card"),
    "outcome.DECLINED_ONLINE": _T("发卡行拒绝", "Declined by the issuer"),
    "outcome.HOST_APPROVED_CARD_DECLINED": _T(
        "主机批准但卡片拒绝，已冲正", "Host approved, card refused: reversed"
    ),
    "outcome.TERMINATED": _T("交易中止", "Transaction ended"),
    # fields
    "field.order": _T("订单号", "Order"),
    "field.card": _T("卡号", "Card"),
    "field.auth_code": _T("授权码", "Auth code"),
    "field.rrn": _T("参考号", "RRN"),
    "field.trace": _T("凭证号", "Trace"),
    "field.status": _T("状态", "Status"),
    "field.type": _T("类型", "Type"),
    "field.amount": _T("金额", "Amount"),
    "field.time": _T("时间", "Time"),
    "field.operation": _T("操作", "Operation"),
    "field.original_amount": _T("原交易金额", "Original amount"),
    "field.refund_amount": _T("退货金额", "Refund amount"),
    "field.void_amount": _T("撤销金额", "Void amount"),
    "field.entered_original": _T("输入原金额", "Original entered"),
    "field.new_amount": _T("新金额", "New amount"),
    "field.method": _T("退款方式", "Refund to"),
    "field.response": _T("应答码", "Response"),
    "field.reference": _T("编号", "Reference"),
    # journal vocabulary
    "type.sale": _T("消费", "sale"),
    "type.preauth": _T("预授权", "pre-auth"),
    "type.completion": _T("预授权完成", "completion"),
    "type.void": _T("撤销", "void"),
    "type.refund": _T("退货", "refund"),
    "type.adjust": _T("调整", "adjust"),
    "type.cash_refund": _T("现金退款", "cash refund"),
    "status.approved": _T("已批准", "approved"),
    "status.voided": _T("已撤销", "voided"),
    "status.reversed": _T("已冲正", "reversed"),
    "status.declined": _T("已拒绝", "declined"),
    "status.pending": _T("待应答", "pending"),
    "status.failed": _T("失败", "failed"),
    "operation.void": _T("撤销订单", "Cancel order"),
    "operation.refund": _T("退货到卡", "Refund to the card"),
    "operation.cash_refund": _T("现金退款", "Cash refund"),
    "operation.adjust": _T("调整金额", "Adjust amount"),
    # orders
    "orders.title": _T("订单查询", "Orders"),
    "orders.detail": _T("订单详情", "Order"),
    "orders.by_order": _T("按订单号", "By order number"),
    "orders.by_date": _T("按日期", "By date"),
    "orders.by_amount": _T("按金额", "By amount"),
    "orders.by_last4": _T("按卡号后四位", "By card's last four"),
    "orders.enter_order": _T("请输入订单号", "Enter the order number"),
    "orders.enter_date": _T("请输入日期（年月日）", "Enter the date (YYYYMMDD)"),
    "orders.enter_amount": _T("请输入金额", "Enter the amount"),
    "orders.enter_last4": _T("请输入卡号后四位", "Enter the card's last four"),
    "orders.found": _T("找到 {count} 笔", "{count} found"),
    "orders.none": _T("没有找到订单", "No order found"),
    "orders.history": _T("交易历史", "History"),
    "orders.no_history": _T("无后续交易", "Nothing since"),
    # evidence
    "evidence.order": _T("订单号", "Order number"),
    "evidence.original_time": _T("原交易日期时间", "Original date and time"),
    "evidence.name": _T("申请人姓名", "Applicant's name"),
    "evidence.contact": _T("联系电话", "Contact phone"),
    "evidence.reason": _T("原因", "Reason"),
    "reason.returned": _T("客户退货", "Goods returned"),
    "reason.wrong_amount": _T("金额有误", "Wrong amount"),
    "reason.duplicate": _T("重复扣款", "Charged twice"),
    "reason.cancelled": _T("客户取消订单", "Order cancelled"),
    # refund, adjust
    "refund.amount": _T("请输入退货金额", "Enter the refund amount"),
    "refund.amount_is": _T("退货金额 {amount}", "Refund {amount}"),
    "refund.to_card": _T("退回原卡", "To the card"),
    "refund.in_cash": _T("现金退款", "In cash"),
    "adjust.original": _T("请输入原交易金额", "Enter the original amount"),
    "adjust.new": _T("请输入调整后金额", "Enter the new amount"),
    "adjust.completion": _T("预授权完成", "Pre-authorisation completed"),
    # terms, confirm, supervisor
    "terms.title": _T("交易条款", "Terms"),
    "terms.reference": _T("条款版本 {reference}", "Terms {reference}"),
    "confirm.title": _T("请确认", "Please confirm"),
    "supervisor.title": _T("主管授权", "Supervisor"),
    "supervisor.prompt": _T("请输入主管密码", "Supervisor password"),
    # request status
    "queue.reversal": _T("冲正", "reversal"),
    "queue.advice": _T("通知", "advice"),
    "queue.notice": _T("客户通知", "notice"),
    "queue.waiting_head": _T("待上送：{count}", "Waiting: {count}"),
    "queue.failed_head": _T("上送失败：{count}", "Failed: {count}"),
    "queue.pending_head": _T("待应答：{count}", "Awaiting an answer: {count}"),
    "queue.recent": _T("最近的请求", "Recent requests"),
    "queue.none": _T("暂无", "None"),
    "queue.retrying": _T("正在上送…", "Sending…"),
    "queue.drained": _T(
        "已送达 {sent}，待上送 {waiting}，失败 {flagged}", "Sent {sent}, waiting {waiting}, failed {flagged}"
    ),
    "queue.stopped": _T("中断：{why}", "Stopped: {why}"),
    "state.saved": _T("已保存", "saved"),
    "state.sent": _T("已发送 {attempts} 次", "sent ({attempts} tries)"),
    "state.acknowledged": _T("主机已确认", "acknowledged"),
    "state.waiting": _T("等待中", "waiting"),
    "state.declined": _T("已拒绝", "declined"),
    "state.reversed": _T("已冲正", "reversed"),
    "state.failed": _T("失败", "failed"),
    # receipts
    "receipt.title": _T("签购单预览", "Receipt"),
    "receipt.merchant": _T("商户存根", "Merchant copy"),
    "receipt.customer": _T("持卡人存根", "Customer copy"),
    "receipt.printing": _T("已送打印", "Sent to the printer"),
    "receipt.none": _T("此结果无签购单", "No receipt for this result"),
    # settlement, sign-on
    "settle.batch": _T("批次号 {batch}", "Batch {batch}"),
    "settle.debits": _T("借记 {count} 笔 {amount}", "Debits {count}: {amount}"),
    "settle.credits": _T("贷记 {count} 笔 {amount}", "Credits {count}: {amount}"),
    "settle.ask": _T("按确认键结算", "OK to settle"),
    "settle.balanced": _T("结算平账", "Settled: balanced"),
    "settle.unbalanced": _T("结算不平，已批上送", "Not balanced: batch uploaded"),
    "settle.uploaded": _T("批上送 {count} 笔", "{count} uploaded"),
    "settle.new_batch": _T("新批次 {batch}", "New batch {batch}"),
    "signon.ok": _T("签到成功", "Signed on"),
    "signon.refused": _T("签到失败", "Sign-on refused"),
    # errors
    "error.amount_zero": _T("金额须大于零", "The amount must be more than zero"),
    "error.amount": _T("金额有误", "Not an amount"),
    "error.required": _T("此项必填", "Required"),
    "error.incomplete": _T("请输入完整", "Not complete"),
    "error.date": _T("日期时间无效", "Not a date and time"),
    "error.password_short": _T("密码至少 {length} 位", "At least {length} digits"),
    "error.rule": _T("交易规则不允许", "Not allowed by the rules"),
    "error.evidence": _T("{field}有误", "{field}: not accepted"),
    "error.supervisor": _T("主管密码错误或已锁定", "Supervisor password wrong or locked"),
    "error.not_found": _T("没有找到原交易", "The original was not found"),
    "error.pending_reversal": _T("有冲正待上送，请稍后重试", "A reversal waits for the host: retry later"),
    "error.host_down": _T("无法连接主机", "The host cannot be reached"),
    "error.card": _T("卡片已移开或未插卡", "No card, or the card was removed"),
    "error.refused": _T("操作被拒绝", "Refused"),
    "error.internal": _T("内部错误", "Internal error"),
    # the rules' refusals (firmware.txn.rules ids)
    "rule.void.already_voided": _T("该订单已撤销", "Already cancelled"),
    "rule.void.same_batch": _T("已结算，请改用退货", "Settled: refund it instead"),
    "rule.void.refunded": _T("已退货，不能撤销", "Refunded: cannot be cancelled"),
    "rule.void.adjusted": _T("金额已调整，不能撤销", "Adjusted: cannot be cancelled"),
    "rule.void.not_approved": _T("原交易未批准", "The original was not approved"),
    "rule.refund.exceeds_sale": _T("退货总额超过原交易金额", "Refunds would exceed the sale"),
    "rule.cash_refund.exceeds_sale": _T("退款总额超过原交易金额", "Refunds would exceed the sale"),
    "rule.refund.voided": _T("原交易已撤销", "The sale was cancelled"),
    "rule.terms.cash_refund.max_amount": _T("超过现金退款限额", "Over the cash refund limit"),
    "rule.terms.refund.window": _T("超过退货期限", "Past the refund window"),
    "rule.terms.refund.per_day": _T("超过当日退货限额", "Over the daily refund limit"),
    "rule.adjust.original_mismatch": _T("原金额不符", "The original amount does not match"),
    "rule.adjust.already_adjusted": _T("已调整过金额", "Already adjusted"),
    "rule.adjust.below_original": _T("小费调整不能减少金额", "A tip adjust cannot lower the amount"),
    "rule.terms.adjust.tip_max": _T("超过小费上限", "Over the tip limit"),
}

# Values for the placeholders, as long as they get, for the catalogue's fit test.
SAMPLE_VALUES: Final[dict[str, object]] = {
    "tid": "TERM0001",
    "mid": "123456789012345",
    "state": "主机离线",
    "count": 99,
    "mode": "abc",
    "seconds": 999,
    "order": "25013114050099",
    "tries": 3,
    "amount": "99999.99 元",
    "currency": "CNY",
    "field": "原交易日期时间",
    "length": 6,
    "reference": "TT-2025.1",
    "batch": "000001",
    "sent": 99,
    "waiting": 99,
    "flagged": 99,
    "why": "host unreachable",
    "attempts": 3,
}


def has_text(key: str) -> bool:
    return key in CATALOGUE


def tr(key: str, language: Language, **values: object) -> str:
    """The text of `key` in `language`, its `{names}` filled from `values` (KeyError if unknown)."""
    text = CATALOGUE[key].in_language(language)
    return text.format(**values) if values else text


# ----- the technician menu's strings (firmware/screens/technician_text.py) ---------------------------
from firmware.screens.technician_text import TECHNICIAN_SAMPLE_VALUES, TECHNICIAN_TEXT  # noqa: E402

CATALOGUE.update(TECHNICIAN_TEXT)
SAMPLE_VALUES.update({name: v for name, v in TECHNICIAN_SAMPLE_VALUES.items() if name not in SAMPLE_VALUES})
