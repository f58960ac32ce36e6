
ý
S
SEED-0$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4eBANKRUMMXXX"BANKIRTHXXX(0¿¨•¨¢48R¥
INSTR-1E2E-1$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"	ÀÄRUB*
2026-11-280:
Ivan PetrovRU-0001BBANKRUMMXXXJ
Sara AhmadiIR-0001RBANKIRTHXXXZ
Invoice 42@1c¶€ÑŠâi¨¬ô–ø°eùÛ1;’Ø¨Eº
¨À´—ý¥%D10^YÐr0N[y­ûÌàuq®¤gÇtÝÃ¥	BANKIRTHXXX"k1