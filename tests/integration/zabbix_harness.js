// Runs a Zabbix webhook media type script under Node.js as Zabbix's server runs it: the
// script is the body of a function of `value` (the parameters as a JSON string), with
// Zabbix's synchronous HttpRequest and Zabbix.log. HttpRequest is backed by curl through
// execFileSync because Duktape's is blocking and Node's http is not.
//
//   node zabbix_harness.js SCRIPT.js PARAMS.json
//
// Prints one JSON line: {"ok": true, "result": ...} or {"ok": false, "error": "..."}, plus
// "requests" (what was sent) and "log" (Zabbix.log lines). Exit status 0 either way, 2 when
// the harness itself is misused.
'use strict';

const fs = require('fs');
const childProcess = require('child_process');

if (process.argv.length !== 4) {
    process.stderr.write('usage: node zabbix_harness.js SCRIPT.js PARAMS.json\n');
    process.exit(2);
}

const script = fs.readFileSync(process.argv[2], 'utf8');
const value = fs.readFileSync(process.argv[3], 'utf8');
const requests = [];
const log = [];
const STATUS_MARK = '\n--harness-status:';

function HttpRequest() {
    this.headers = [];
    this.proxy = null;
    this.status = 0;
}

HttpRequest.prototype.addHeader = function (header) {
    this.headers.push(String(header));
};
HttpRequest.prototype.clearHeader = function () {
    this.headers = [];
};
HttpRequest.prototype.setProxy = function (proxy) {
    this.proxy = String(proxy);
};
HttpRequest.prototype.getStatus = function () {
    return this.status;
};
HttpRequest.prototype.request = function (method, url, data) {
    const args = ['--silent', '--show-error', '--max-time', '20', '--request', method,
                  '--write-out', STATUS_MARK + '%{http_code}', '--noproxy', '*'];
    this.headers.forEach((h) => args.push('--header', h));
    if (data !== undefined) {
        args.push('--data-binary', '@-');
    }
    args.push(String(url));
    requests.push({method: method, url: String(url), headers: this.headers.slice(),
                   body: data === undefined ? null : String(data)});
    let out;
    try {
        out = childProcess.execFileSync('curl', args, {
            input: data === undefined ? '' : String(data), encoding: 'utf8', timeout: 30000});
    }
    catch (error) {
        // As in Zabbix, a transport failure is an exception thrown into the script.
        throw 'Cannot perform request: ' + String(error.stderr || error.message).trim();
    }
    const at = out.lastIndexOf(STATUS_MARK);
    this.status = parseInt(out.substring(at + STATUS_MARK.length), 10);
    return out.substring(0, at);
};
['get', 'post', 'put', 'patch', 'delete'].forEach((verb) => {
    HttpRequest.prototype[verb] = function (url, data) {
        return this.request(verb.toUpperCase(), url, data);
    };
});

const Zabbix = {
    log: function (level, message) {
        log.push('[' + level + '] ' + String(message));
    },
};

let outcome;
try {
    // Zabbix compiles the script as a function body; `return` ends it.
    const run = new Function('value', 'HttpRequest', 'Zabbix', script);
    outcome = {ok: true, result: run(value, HttpRequest, Zabbix)};
}
catch (error) {
    outcome = {ok: false, error: String(error)};
}
outcome.requests = requests;
outcome.log = log;
process.stdout.write(JSON.stringify(outcome) + '\n');
