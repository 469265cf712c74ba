"""Images: robust loading and preparation (io), pictures made for display, plotly figures."""
