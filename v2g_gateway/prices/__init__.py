"""Day-ahead prices and user tariffs, normalised to UTC slots priced per kWh."""
