@1c╢А╤КтiимЇЦ°░e∙█1;Т╪иE║
и└┤Ч¤е%D10^Y╨r0ЭN[yн√╠рuqодg╟t▌├е	BANKRUMMXXX"k1