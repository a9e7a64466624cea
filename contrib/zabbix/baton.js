// Baton webhook for Zabbix 6.0+ (the script of media type "Baton").
// Zabbix runs it in its Duktape engine (ECMAScript 5.1: var and function only) with
// `value` holding the media type's parameters as a JSON object of strings. It POSTs
// them, lightly cleaned, to Baton's /v1/ingest/<source>; Baton's zabbix source decides
// what a problem, recovery or update means. Throwing makes Zabbix retry the alert.

var BatonWebhook = {
    // Parameters that configure the sending and are never forwarded (the token least of all).
    local: ['baton_url', 'baton_token', 'http_proxy'],
    // Parameters whose value is JSON ({EVENT.TAGSJSON}).
    json: ['event_tags'],

    // A macro Zabbix could not expand stays as its own name, e.g. "{EVENT.RECOVERY.ID}" in
    // a problem notification or anything typed into the media type's Test form.
    unexpanded: function (text) {
        return /^\{\$?[A-Z][A-Z0-9_.]*\}$/.test(text);
    },

    body: function (params) {
        var body = {format: 'baton-zabbix/1'},
            key,
            text;

        for (key in params) {
            if (!params.hasOwnProperty(key) || BatonWebhook.local.indexOf(key) !== -1) {
                continue;
            }
            text = typeof params[key] === 'string' ? params[key] : String(params[key]);
            if (text === '' || BatonWebhook.unexpanded(text)) {
                continue;
            }
            if (BatonWebhook.json.indexOf(key) !== -1) {
                try {
                    body[key] = JSON.parse(text);
                }
                catch (error) {
                    Zabbix.log(4, '[Baton Webhook] ' + key + ' is not JSON, left out');
                }
                continue;
            }
            body[key] = text;
        }
        // The Test button sends the macros unexpanded: no event to follow, so Baton is
        // told it is a test (its source's "test" setting decides what that does). Only one
        // of the two missing is a broken media type, which Baton refuses with a 400.
        if (typeof body.event_id === 'undefined' && typeof body.event_value === 'undefined') {
            body.test = true;
        }
        return body;
    },

    send: function (params, body) {
        var request = new HttpRequest(),
            response,
            status,
            detail = '';

        if (typeof params.http_proxy === 'string' && params.http_proxy.trim() !== ''
                && !BatonWebhook.unexpanded(params.http_proxy.trim())) {
            request.setProxy(params.http_proxy.trim());
        }
        request.addHeader('Content-Type: application/json');
        request.addHeader('Authorization: Bearer ' + params.baton_token);
        Zabbix.log(4, '[Baton Webhook] POST ' + params.baton_url + ' event '
            + (body.event_id || 'test'));
        response = request.post(params.baton_url, JSON.stringify(body));
        status = request.getStatus();
        Zabbix.log(4, '[Baton Webhook] HTTP ' + status + ': ' + response);

        if (status < 200 || status >= 300) {
            try {
                detail = JSON.parse(response).detail || '';
            }
            catch (error) {
                detail = String(response).substring(0, 200);
            }
            throw 'Baton answered HTTP ' + status + (detail ? ': ' + detail : '');
        }
        return response;
    }
};

try {
    var params = JSON.parse(value);

    if (typeof params.baton_url !== 'string' || !/^https?:\/\/[^\s]+$/.test(params.baton_url)) {
        throw 'parameter baton_url must be the URL of /v1/ingest/<source> on Baton';
    }
    if (typeof params.baton_token !== 'string' || params.baton_token.trim() === ''
            || BatonWebhook.unexpanded(params.baton_token)) {
        throw 'parameter baton_token is empty';
    }

    BatonWebhook.send(params, BatonWebhook.body(params));
    return 'OK';
}
catch (error) {
    Zabbix.log(3, '[Baton Webhook] notification failed: ' + error);
    throw 'Sending to Baton failed: ' + error;
}
