
•
S
SEED-4$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4eBANKRUMMXXX"BANKIRTHXXX(0Ώ¨•¨Ά48r>
CASE-1SEED-0$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e *NOAS@©G®ιξvν3όΙ•ς,Yc!Έ>§Zά™Λ²71µQγγA3Bς΄,Hυς‡ΡcÒήΉ΄YΏθ z€ΪBANKRUMMXXX"k1