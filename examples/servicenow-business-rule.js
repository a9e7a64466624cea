// Baton callback for the `servicenow` connector: a business rule on the Incident table.
//
// System Definition > Business Rules > New
//   Table: Incident [incident]   When: after   Update: checked   Advanced: checked
//   Condition: current.correlation_id.startsWith('baton-') &&
//              (current.state.changes() || current.work_notes.changes())
// Replace BATON_URL with https://<baton host>/v1/callbacks/<connector name> and the
// credentials with the connector's callback_username/callback_password (or use
// setRequestHeader('Authorization', 'Bearer ' + token) with callback_token). Better: keep
// them in a REST Message record with Basic auth profile and use
// new sn_ws.RESTMessageV2('Baton', 'post') instead of the inline setup below.
(function executeRule(current, previous /*null when async*/) {
    var notes = '';
    if (current.work_notes.changes()) {
        // The newest journal entry, without its "<date> - <user> (Work notes)" header line.
        notes = current.work_notes.getJournalEntry(1).replace(/^.*\r?\n/, '');
    }
    var body = {
        sys_id: current.getUniqueValue(),
        number: current.getValue('number'),
        state: current.getValue('state'),
        previous_state: previous ? previous.getValue('state') : null,
        correlation_id: current.getValue('correlation_id'),
        sys_updated_on: current.getValue('sys_updated_on'),
        sys_updated_by: current.getValue('sys_updated_by'),
        sys_mod_count: current.getValue('sys_mod_count'),
        work_notes: notes
    };
    var request = new sn_ws.RESTMessageV2();
    request.setEndpoint('BATON_URL');
    request.setHttpMethod('post');
    request.setBasicAuth('CALLBACK_USERNAME', 'CALLBACK_PASSWORD');
    request.setRequestHeader('Content-Type', 'application/json');
    request.setRequestBody(JSON.stringify(body));
    request.executeAsync();  // never hold the user's transaction on Baton
})(current, previous);
