"""Reconnect with offline TransactionEvents, and the CSMS-initiated requests."""

from __future__ import annotations

import asyncio

from ocpp.v201 import call
from test_sim_charger import T0, car, csms_server, discharge_profile, running

from simulators.charger import SimulatedCharger
from v2g_gateway.clock import ManualClock


async def test_offline_transaction_events_replayed_after_reconnect() -> None:
    clock = ManualClock(T0)
    async with csms_server() as csms:
        charger = SimulatedCharger(
            csms.url, "sim-0001", password=None, clock=clock, reconnect_min_s=0.01
        )
        async with running(charger):
            first = await csms.session()
            assert (await csms.next("BootNotification"))["reason"] == "PowerUp"
            await charger.plug_in(car(50))
            await first._connection.close()
            await asyncio.wait_for(charger.disconnected.wait(), 10)
            assert not charger.booted.is_set()
            await charger.plug_out()  # happens while the link is down
            second = await csms.session()
            assert second is not first
            boot = await csms.next("BootNotification")
            assert boot["reason"] == "Unknown"
            ended = await csms.next("TransactionEvent")
            while ended["event_type"] != "Ended":
                ended = await csms.next("TransactionEvent")
            assert ended["offline"] is True
            assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
            assert charger.connects == 2


async def test_composite_variables_report_trigger_and_remote_stop() -> None:
    clock = ManualClock(T0)
    async with csms_server() as csms:
        charger = SimulatedCharger(csms.url, "sim-0001", password=None, clock=clock)
        async with running(charger):
            cp = await csms.session()
            tx_id = await charger.plug_in(car(50))
            await cp.call(discharge_profile(tx_id, T0, minutes=15), suppress=False)

            comp = await cp.call(
                call.GetCompositeSchedule(duration=3600, evse_id=1), suppress=False
            )
            assert comp.status == "Accepted"
            periods = comp.schedule["charging_schedule_period"]
            assert [(p["start_period"], p["limit"]) for p in periods] == [(0, -6000), (900, 11000)]

            got = await cp.call(
                call.GetVariables(
                    get_variable_data=[
                        {
                            "component": {"name": "V2XChargingCtrlr"},
                            "variable": {"name": "Enabled"},
                        },
                        {"component": {"name": "Nope"}, "variable": {"name": "X"}},
                    ]
                ),
                suppress=False,
            )
            statuses = [
                (r["attribute_status"], r.get("attribute_value")) for r in got.get_variable_result
            ]
            assert statuses == [("Accepted", "true"), ("UnknownComponent", None)]

            res = await cp.call(
                call.SetVariables(
                    set_variable_data=[
                        {
                            "attribute_value": "30",
                            "component": {"name": "SampledDataCtrlr"},
                            "variable": {"name": "TxUpdatedInterval"},
                        },
                        {
                            "attribute_value": "5",
                            "component": {"name": "ChargingStation"},
                            "variable": {"name": "Model"},
                        },
                    ]
                ),
                suppress=False,
            )
            assert [r["attribute_status"] for r in res.set_variable_result] == [
                "Accepted",
                "Rejected",
            ]

            rep = await cp.call(
                call.GetBaseReport(request_id=4, report_base="FullInventory"), suppress=False
            )
            assert rep.status == "Accepted"
            report = await csms.next("NotifyReport")
            names = {(d["component"]["name"], d["variable"]["name"]) for d in report["report_data"]}
            assert ("SmartChargingCtrlr", "Enabled") in names
            assert ("ISO15118Ctrlr", "Enabled") in names

            trig = await cp.call(
                call.TriggerMessage(requested_message="MeterValues"), suppress=False
            )
            assert trig.status == "Accepted"
            await csms.next("MeterValues")

            profiles = await cp.call(
                call.GetChargingProfiles(
                    request_id=5, charging_profile={"charging_profile_purpose": "TxProfile"}
                ),
                suppress=False,
            )
            assert profiles.status == "Accepted"
            reported = await csms.next("ReportChargingProfiles")
            assert reported["charging_profile"][0]["id"] == 7

            clear = await cp.call(call.ClearChargingProfile(charging_profile_id=7), suppress=False)
            assert clear.status == "Accepted"
            assert charger.installed == []

            stop = await cp.call(call.RequestStopTransaction(transaction_id=tx_id), suppress=False)
            assert stop.status == "Accepted"
            ended = await csms.next("TransactionEvent")
            while ended["event_type"] != "Ended":
                ended = await csms.next("TransactionEvent")
            assert ended["transaction_info"]["stopped_reason"] == "Remote"
            await clock.advance(60)
            await charger.settled()
            assert charger.power_w() == 0


async def test_txprofile_for_another_transaction_is_rejected_and_outage_stops_charging() -> None:
    clock = ManualClock(T0)
    async with csms_server() as csms:
        charger = SimulatedCharger(csms.url, "sim-0001", password=None, clock=clock)
        async with running(charger):
            cp = await csms.session()
            ev = car(50)
            await charger.plug_in(ev)
            res = await cp.call(discharge_profile("not-this-one", T0, 15), suppress=False)
            assert res.status == "Rejected"
            assert res.status_info["reason_code"] == "TxNotFound"
            charger.set_grid_voltage(0)
            await clock.advance(600)
            await charger.settled()
            assert charger.power_w() == 0  # nothing to charge from
            update = await csms.next("TransactionEvent")
            while update["trigger_reason"] != "AbnormalCondition":
                update = await csms.next("TransactionEvent")
            volts = [
                float(s["value"])
                for mv in update["meter_value"]
                for s in mv["sampled_value"]
                if s.get("measurand") == "Voltage"
            ]
            assert volts == [0.0, 0.0, 0.0]
            assert ev.soc_percent == 50
