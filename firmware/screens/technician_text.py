"""The technician menu's strings, in 中文 and English; `firmware.screens.text` takes them into its catalogue.

Keys follow the catalogue's own: `*.title` a title bar, `hint.*` the hint
line, `soft.*` an F-key label, the rest body lines.
"""

from __future__ import annotations

from typing import Final

from firmware.txn.terms import Text

__all__ = ["TECHNICIAN_SAMPLE_VALUES", "TECHNICIAN_TEXT"]

_T = Text

TECHNICIAN_TEXT: Final[dict[str, Text]] = {
    "menu.technician": _T("技术员菜单", "Technician"),
    # hints and soft keys
    "hint.tech_keys": _T("F1装载主密钥 F2签到 ▲▼翻页", "F1 load TMK  F2 sign on  ▲▼"),
    "hint.tech_read": _T("插卡后自动读卡  确认：再读", "Insert the card  OK: read again"),
    "hint.tech_scroll": _T("▲▼翻页  取消：返回", "▲▼ scroll  Cancel: back"),
    "hint.tech_install": _T("确认：安装  取消：返回", "OK: install  Cancel: back"),
    "hint.tech_signon": _T("确认：重新签到  取消：返回", "OK: sign on again  Cancel: back"),
    "hint.tech_path": _T("1键：/ . _ -  F1大小写/数字", "Key 1: / . _ -  F1: mode"),
    "soft.tech_load": _T("装载", "Load TMK"),
    "soft.tech_signon": _T("签到", "Sign on"),
    # log in, password
    "tech.login.title": _T("技术员登录", "Technician log-in"),
    "tech.login.prompt": _T("请输入技术员密码", "Technician password"),
    "tech.wrong": _T("密码错误（连续 {failures} 次）", "Wrong password ({failures} in a row)"),
    "tech.locked": _T("已锁定，请 {seconds} 秒后再试", "Locked: try again in {seconds} s"),
    "tech.no_password": _T(
        "尚未设置技术员密码（pos-keys set-password technician）",
        "No technician password yet (pos-keys set-password technician)",
    ),
    "tech.must_change": _T("出厂密码，请先设置新密码", "A factory password: set a new one first"),
    "tech.password.title": _T("修改技术员密码", "Change password"),
    "tech.password.new": _T("请输入新密码（至少 {length} 位）", "New password (at least {length})"),
    "tech.password.again": _T("请再次输入新密码", "The new password again"),
    "tech.password.old": _T("请输入当前密码", "Current password"),
    "tech.password.mismatch": _T("两次输入不一致，请重新输入", "The two differ: type it again"),
    "tech.password.wrong": _T("当前密码错误", "The current password is wrong"),
    "tech.password.locked": _T("已锁定，请稍后再试", "Locked: try again later"),
    "tech.password.same": _T("新密码不能与旧密码相同", "The new password is the old one"),
    "tech.password.changed": _T("密码已修改", "Password changed"),
    # the menu
    "tech.title": _T("技术员菜单", "Technician"),
    "tech.keys": _T("密钥管理", "Keys"),
    "tech.parameters": _T("参数与条款", "Parameters and terms"),
    "tech.reader": _T("读卡测试", "Reader test"),
    "tech.export": _T("导出日志", "Export logs"),
    "tech.firmware": _T("固件升级", "Firmware update"),
    "tech.change_password": _T("修改密码", "Change password"),
    "tech.unavailable": _T("本终端未配置技术员功能", "Technician tools not configured here"),
    # keys
    "tech.keys.title": _T("密钥管理", "Keys"),
    "tech.keys.none": _T("没有密钥", "No keys"),
    "tech.keys.block": _T("（密钥块版本 {block}）", "(key block version {block})"),
    "tech.block.title": _T("选择主密钥块文件", "TMK key block file"),
    "tech.kbpk.title": _T("选择保护密钥文件", "KBPK file"),
    "tech.type_path": _T("手动输入路径…", "Type a path…"),
    "tech.path.title": _T("输入路径", "Type a path"),
    "tech.path.prompt": _T("{media} 下的路径", "Path under {media}"),
    "tech.no_files": _T("{media} 下没有 {pattern} 文件", "No {pattern} file under {media}"),
    "tech.no_dirs": _T("{media} 下没有可写的目录（U盘）", "No writable directory (USB stick) under {media}"),
    "tech.tmk.confirm": _T("装载主密钥", "Load the TMK"),
    "tech.tmk.block": _T("密钥块：{path}", "Key block: {path}"),
    "tech.tmk.kbpk": _T("保护密钥：{path}", "KBPK: {path}"),
    "tech.tmk.loaded": _T("主密钥已装载", "TMK loaded"),
    "tech.tmk.detail": _T("版本 {version} KCV {kcv}", "Version {version}, KCV {kcv}"),
    "tech.tmk.key_version": _T("密钥块 {block_id} 密钥版本 {block}", "Block {block_id}, key version {block}"),
    "tech.tmk.signon": _T("工作密钥须重新签到获取", "Sign on again for new working keys"),
    # parameters and terms
    "tech.params.title": _T("参数与条款", "Parameters and terms"),
    "tech.params.host": _T("主机参数", "Host profile"),
    "tech.params.mac": _T("MAC 算法：{mac}", "MAC: {mac}"),
    "tech.params.scheme": _T("签到密钥方案：{scheme}", "Sign-on key scheme: {scheme}"),
    "tech.params.timeouts": _T(
        "连接超时 {connect} 秒，应答超时 {answer} 秒", "Connect {connect} s, answer {answer} s"
    ),
    "tech.params.retries": _T(
        "最多尝试 {attempts} 次，间隔 {backoff} 秒", "{attempts} tries, waits {backoff} s"
    ),
    "tech.params.identity": _T("终端身份", "Identity"),
    "tech.params.terminal": _T("终端号：{tid}", "Terminal id: {tid}"),
    "tech.params.merchant": _T("商户号：{mid}", "Merchant id: {mid}"),
    "tech.params.name": _T("商户名称：{name}", "Merchant: {name}"),
    "tech.params.terms": _T("交易条款 {reference}（{currency}）", "Terms {reference} ({currency})"),
    # reader test
    "tech.reader.title": _T("读卡测试", "Reader test"),
    "tech.reader.insert": _T("请插入测试卡", "Insert a card"),
    "tech.reader.ready": _T("卡片已插入，按确认读卡", "Card in: OK to read it"),
    "tech.reader.reading": _T("正在读卡…", "Reading the card…"),
    "tech.reader.reader": _T("读卡器：{reader}", "Reader: {reader}"),
    "tech.reader.aid": _T("AID：{aid}", "AID: {aid}"),
    "tech.reader.label": _T("应用标签：{label}", "Label: {label}"),
    "tech.reader.pan": _T("卡号：{pan}", "PAN: {pan}"),
    "tech.reader.expiry": _T("有效期：{expiry}", "Expiry: {expiry}"),
    "tech.reader.method": _T("选择方式：{method}", "Selection: {method}"),
    "tech.reader.apdus": _T("APDU {apdus} 条，共 {ms} 毫秒", "{apdus} APDUs in {ms} ms"),
    # export
    "tech.export.title": _T("导出日志", "Export logs"),
    "tech.export.pick": _T("选择导出目录（U盘）", "Where to (USB stick)"),
    "tech.export.what": _T(
        "将导出：请求队列、交易日志（卡号已屏蔽）、终端日志最后 {lines} 行",
        "Exports the queue, the journal (masked) and the log's last {lines} lines",
    ),
    "tech.export.no_log": _T("未配置终端日志文件", "No log file is configured"),
    "tech.export.to": _T("目录：{path}", "Directory: {path}"),
    "tech.export.done": _T("已导出", "Exported"),
    "tech.export.counts": _T(
        "交易 {entries} 笔，队列 {count} 条", "{entries} journal entries, {count} queued"
    ),
    "tech.export.log_lines": _T("日志 {lines} 行", "{lines} log lines"),
    # firmware
    "tech.firmware.title": _T("固件升级", "Firmware update"),
    "tech.image.title": _T("选择固件镜像", "Firmware image"),
    "tech.image.checking": _T("正在校验镜像…", "Checking the image…"),
    "tech.image.ok": _T("镜像校验通过", "The image checks out"),
    "tech.image.version": _T("版本 {version}（当前 {installed}）", "Version {version} (now {installed})"),
    "tech.image.target": _T(
        "平台 {arch} / Python {python}，{files} 个文件", "{arch} / Python {python}, {files} files"
    ),
    "tech.image.key": _T("签名密钥 {signer}", "Signed by {signer}"),
    "tech.image.development": _T("开发密钥签名", "Signed with a development key"),
    "tech.image.none": _T("无", "none"),
    "tech.image.refused": _T("镜像被拒绝", "Image refused"),
    "tech.image.installing": _T("正在安装到备用分区…", "Installing into the other slot…"),
    "tech.image.installed": _T("已安装 {version} 到 {slot} 分区", "{version} installed into slot {slot}"),
    "tech.image.restart": _T("请重启终端以启用新固件", "Restart the terminal to run it"),
    "tech.image.trial": _T(
        "试运行：{boots} 次启动内未确认则回到 {previous} 分区",
        "On trial: back to slot {previous} unless good within {boots} starts",
    ),
}

# Placeholder values as long as they get, for the catalogue's fit test.
TECHNICIAN_SAMPLE_VALUES: Final[dict[str, object]] = {
    "failures": 4,
    "name": "TEST MERCHANT SHANGHAI",
    "version": "10.20.30",
    "kcv": "A1B2C3",
    "block": "99",
    "block_id": "D",
    "media": "/media",
    "pattern": "*.tr31",
    "path": "/media/usb/kit/tmk.tr31",
    "mac": "unionpay-ecb",
    "scheme": "003",
    "connect": 600,
    "answer": 600,
    "attempts": 100,
    "backoff": "0.5/1/2",
    "tid": "TERM0001",
    "mid": "123456789012345",
    "reference": "TT-2025.1",
    "currency": "CNY",
    "reader": "Virtual PCD 00 00",
    "aid": "A0000003330101",
    "label": "UnionPay Credit",
    "pan": "622126******0012",
    "expiry": "2030-12",
    "method": "pse",
    "apdus": 99,
    "ms": 9999.9,
    "lines": 500,
    "entries": 9999,
    "count": 999,
    "installed": "10.20.29",
    "arch": "aarch64",
    "python": "3.11",
    "files": 9999,
    "signer": "0123456789abcdef",
    "slot": "b",
    "previous": "a",
    "boots": 3,
}
