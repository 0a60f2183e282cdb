
5


service.name
	other-app	ÀMÚ½Xë*
hello