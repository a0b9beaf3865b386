"""Payment gateways behind one interface (issue 12; docs/adr/0041-payment-providers.md).

The gateway layer of ``apps.commerce``: it never imports commerce models or services
(commerce imports it). ``base`` holds the contract, ``wechat`` / ``alipay`` the real
adapters, ``sandbox`` the local gateway speaking the WeChat Pay v3 wire format."""
