
•
S
SEED-4$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4eBANKRUMMXXX"BANKIRTHXXX(0€ÐÄÏ¢48r>
CASE-1SEED-0$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e *NOAS@þíø14º†é·L‰2Š
/)eHC¶ †î]š*ƒöèáUv{þ÷HLIýãB`¡êØvÒ¯¯oÌ°ƒ²v±BANKRUMMXXX"k1