// peer.js speaking OCPP 2.1: ocpp-rpc in strictMode with its ocpp2.1 validators (the official
// 2.1 schemas, checked by ajv: another implementation than the gateway's fastjsonschema). It
// sends the charger-to-CSMS messages of 2.1 a home V2X charger may send, answers every CSMS call,
// and counts each frame the gateway sends that breaks the 2.1 schemas.
// Usage: node peer21.js ws://host:port/ocpp identity password
// Prints "READY" once its own messages are done, then keeps answering calls until stdin closes,
// then prints one JSON summary line and exits.
'use strict';
const { RPCClient, createValidator } = require('ocpp-rpc');

// ocpp-rpc 2.2.1 ships the 2.1 schemas under ids like 'urn:AuthorizeRequest' but looks them up
// as 'urn:Authorize.req' / '.conf' (the 2.0.1 naming), so its own ocpp2.1 validator finds none:
// the same schemas, renamed to the ids it looks up.
const schemas21 = require('ocpp-rpc/lib/schemas/ocpp2_1.json').map((s) => Object.assign({}, s, {
    $id: s.$id.replace(/Request$/, '.req').replace(/Response$/, '.conf'),
}));
const validator21 = createValidator('ocpp2.1', schemas21);
// The validator must bite: a profile with a signed 2.1 setpoint above 0 as dischargeLimit.
try {
    validator21.validate('urn:SetChargingProfile.req', { evseId: 1, chargingProfile: {
        id: 1, stackLevel: 0, chargingProfilePurpose: 'TxDefaultProfile', chargingProfileKind: 'Absolute',
        chargingSchedule: [{ id: 1, chargingRateUnit: 'W',
            chargingSchedulePeriod: [{ startPeriod: 0, dischargeLimit: 5000 }] }] } });
    process.stdout.write(JSON.stringify({ fatal: 'the 2.1 validator accepts an invalid frame' }) + '\n');
    process.exit(1);
} catch (err) { /* expected */ }

const [endpoint, identity, password] = process.argv.slice(2);
const now = () => new Date().toISOString();
const violations = [];
const received = {};
let inbound = 0;

const client = new RPCClient({
    endpoint, identity, password,
    protocols: ['ocpp2.1'],
    strictMode: true,
    strictModeValidators: [validator21],
    reconnect: false,
    callTimeoutMs: 10000,
});
client.on('message', ({ outbound }) => { if (!outbound) inbound += 1; });
client.on('strictValidationFailure', (e) => violations.push(`${e.error && e.error.message}`));
client.on('badMessage', (e) => violations.push(`bad message: ${e.error && e.error.message}`));

const answers = {
    SetVariables: (p) => ({
        setVariableResult: p.setVariableData.map((d) => ({
            attributeStatus: 'Accepted', component: d.component, variable: d.variable,
        })),
    }),
    GetVariables: (p) => ({
        getVariableResult: p.getVariableData.map((d) => ({
            attributeStatus: 'Accepted', component: d.component, variable: d.variable,
            attributeValue: '1',
        })),
    }),
    GetBaseReport: () => ({ status: 'Accepted' }),
    SetChargingProfile: () => ({ status: 'Accepted' }),
    ClearChargingProfile: () => ({ status: 'Accepted' }),
    GetChargingProfiles: () => ({ status: 'NoProfiles' }),
    GetCompositeSchedule: (p) => ({
        status: 'Accepted',
        schedule: {
            evseId: p.evseId, duration: p.duration, scheduleStart: now(),
            chargingRateUnit: 'W', chargingSchedulePeriod: [{ startPeriod: 0, limit: -5000 }],
        },
    }),
    RequestStartTransaction: () => ({ status: 'Accepted' }),
    RequestStopTransaction: () => ({ status: 'Accepted' }),
    TriggerMessage: () => ({ status: 'Accepted' }),
    Reset: () => ({ status: 'Scheduled' }),
    ChangeAvailability: () => ({ status: 'Accepted' }),
    NotifyAllowedEnergyTransfer: () => ({ status: 'Accepted' }),
};
client.handle(({ method, params }) => {
    received[method] = (received[method] || 0) + 1;
    const answer = answers[method];
    if (!answer) throw new Error(`peer has no answer for ${method}`);
    return answer(params);
});

const mv = (soc) => ({
    timestamp: now(),
    sampledValue: [
        { value: soc, measurand: 'SoC', unitOfMeasure: { unit: 'Percent' } },
        { value: 2.5, measurand: 'Power.Active.Export', unitOfMeasure: { unit: 'kW' } },
        { value: 12000, measurand: 'Energy.Active.Import.Register' },
        { value: 230.1, measurand: 'Voltage', phase: 'L1-N' },
    ],
});
const tx = (seqNo, eventType, triggerReason, extra) => Object.assign({
    eventType, timestamp: now(), triggerReason, seqNo,
    transactionInfo: { transactionId: 'peer-tx-1', chargingState: 'Charging' },
}, extra);
const comp = { component: { name: 'SmartChargingCtrlr' }, variable: { name: 'Enabled' } };

const script = [
    ['BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: 'Peer', model: 'ocpp-rpc' } }],
    ['Heartbeat', {}],
    ['StatusNotification', { timestamp: now(), connectorStatus: 'Occupied', evseId: 1, connectorId: 1 }],
    ['Authorize', { idToken: { idToken: 'TAG1', type: 'ISO14443' } }],
    ['TransactionEvent', tx(0, 'Started', 'CablePluggedIn', {
        evse: { id: 1, connectorId: 1 }, idToken: { idToken: 'TAG1', type: 'ISO14443' } })],
    ['TransactionEvent', tx(1, 'Updated', 'MeterValuePeriodic', { meterValue: [mv(60)] })],
    ['MeterValues', { evseId: 1, meterValue: [mv(59)] }],
    ['NotifyEVChargingNeeds', { evseId: 1, chargingNeeds: {
        requestedEnergyTransfer: 'DC_BPT', availableEnergyTransfer: ['DC', 'DC_BPT'],
        controlMode: 'ScheduledControl', departureTime: now(),
        dcChargingParameters: { evMaxCurrent: 100, evMaxVoltage: 400, stateOfCharge: 59, evEnergyCapacity: 60000 },
        v2xChargingParameters: { minChargePower: 1400, maxChargePower: 11000, minDischargePower: 1000,
            maxDischargePower: 7000, evMinV2XEnergyRequest: -20000, evMaxV2XEnergyRequest: 30000 } } }],
    ['NotifyEVChargingSchedule', { timeBase: now(), evseId: 1, chargingSchedule: {
        id: 1, chargingRateUnit: 'W', chargingSchedulePeriod: [{ startPeriod: 0, limit: 7000 }] } }],
    ['NotifyChargingLimit', { evseId: 1, chargingLimit: { chargingLimitSource: 'EMS', isGridCritical: false } }],
    ['ClearedChargingLimit', { chargingLimitSource: 'EMS', evseId: 1 }],
    ['ReportChargingProfiles', { requestId: 1, chargingLimitSource: 'CSO', evseId: 1, chargingProfile: [{
        id: 1, stackLevel: 0, chargingProfilePurpose: 'TxDefaultProfile', chargingProfileKind: 'Absolute',
        chargingSchedule: [{ id: 1, startSchedule: now(), chargingRateUnit: 'W',
            chargingSchedulePeriod: [{ startPeriod: 0, limit: 3000 }] }] }] }],
    ['NotifyReport', { requestId: 1, generatedAt: now(), seqNo: 0, reportData: [
        Object.assign({ variableAttribute: [{ type: 'Actual', value: 'true' }] }, comp)] }],
    ['NotifyEvent', { generatedAt: now(), seqNo: 0, eventData: [Object.assign({
        eventId: 1, timestamp: now(), trigger: 'Alerting', actualValue: 'true',
        eventNotificationType: 'HardWiredNotification' }, comp)] }],
    ['SecurityEventNotification', { type: 'SettingSystemTime', timestamp: now() }],
    ['FirmwareStatusNotification', { status: 'Installed' }],
    ['LogStatusNotification', { status: 'Idle' }],
    ['DataTransfer', { vendorId: 'com.example' }],
    ['SignCertificate', { csr: '-----BEGIN CERTIFICATE REQUEST-----' }],
    ['Get15118EVCertificate', { iso15118SchemaVersion: 'urn:iso:15118:2:2013:MsgDef', action: 'Install', exiRequest: 'AA==' }],
    ['GetCertificateStatus', { ocspRequestData: { hashAlgorithm: 'SHA256', issuerNameHash: 'a', issuerKeyHash: 'b', serialNumber: '1', responderURL: 'http://x' } }],
    ['NotifyCustomerInformation', { data: 'x', seqNo: 0, generatedAt: now(), requestId: 1 }],
    ['NotifyDisplayMessages', { requestId: 1 }],
    ['NotifyMonitoringReport', { requestId: 1, seqNo: 0, generatedAt: now() }],
    ['PublishFirmwareStatusNotification', { status: 'Idle' }],
    ['ReservationStatusUpdate', { reservationId: 1, reservationUpdateStatus: 'Expired' }],
    ['NotifyPriorityCharging', { transactionId: 'peer-tx-1', activated: false }],
    ['NotifyDERAlarm', { controlType: 'FreqDroop', timestamp: now() }],
    ['NotifyDERStartStop', { controlId: 'd1', started: true, timestamp: now() }],
    ['ReportDERControl', { requestId: 1 }],
    ['NotifySettlement', { pspRef: 'p1', status: 'Settled', settlementAmount: 0, settlementTime: now() }],
    ['BatterySwap', { eventType: 'BatteryIn', requestId: 1, idToken: { idToken: 'TAG1', type: 'ISO14443' },
        batteryData: [{ evseId: 1, serialNumber: 'B1', soC: 50, soH: 90 }] }],
    ['OpenPeriodicEventStream', { constantStreamData: { id: 1, variableMonitoringId: 1, params: { interval: 60, values: 1 } } }],
    ['ClosePeriodicEventStream', { id: 1 }],
    ['PullDynamicScheduleUpdate', { chargingProfileId: 2001 }],
    ['VatNumberValidation', { vatNumber: 'NL123' }],
    ['TransactionEvent', tx(2, 'Ended', 'EVDeparted', { transactionInfo: { transactionId: 'peer-tx-1', stoppedReason: 'EVDisconnected' } })],
];

async function main() {
    await client.connect();
    const answered = {};
    for (const [method, params] of script) {
        try {
            await client.call(method, params);
            answered[method] = true;
        } catch (err) {
            violations.push(`${method}: ${err.message}`);
        }
    }
    process.stdout.write('READY\n');
    process.stdin.resume();
    await new Promise((resolve) => process.stdin.on('end', resolve));
    await client.close({ code: 1000 });
    process.stdout.write(JSON.stringify({ sent: Object.keys(answered), received, inbound, violations }) + '\n');
}

main().catch((err) => {
    process.stdout.write(JSON.stringify({ fatal: String(err && err.stack || err), violations }) + '\n');
    process.exit(1);
});
