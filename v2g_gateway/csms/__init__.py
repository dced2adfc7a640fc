"""The OCPP 2.0.1 central system: sessions in, typed events out, commands through one queue each."""
