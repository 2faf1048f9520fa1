"""Vocabulary of the minor-safety floor, in English, Spanish, French, German, Portuguese.

Every pattern is matched against folded text (``normalize.fold``: case-folded, accents
stripped, so "años" is written ``anos`` and "Mädchen" ``madchen``) and is wrapped in word
boundaries by ``floor.py``. Entries describe; none is graphic. Word lists are vocabulary
and structure (ages, grades, nouns), not sentences of any evaluation set.
"""

from __future__ import annotations

# Ages under 18, as digits and as words in each language.
NUM = r"(?:[0-9]|1[0-7])"
WORDS = (
    # en
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|"
    # es
    r"uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|"
    r"dieciseis|diecisiete|"
    # pt
    r"um|dois|quatro|sete|oito|nove|dez|onze|doze|treze|catorze|quatorze|quinze|"
    r"dezesseis|dezasseis|dezessete|dezassete|"
    # fr
    r"un|deux|trois|cinq|sept|huit|neuf|dix|douze|treize|seize|dix-sept|"
    # de
    r"eins|zwei|drei|vier|funf|fuenf|sechs|sieben|acht|neun|zehn|elf|zwolf|zwoelf|"
    r"dreizehn|vierzehn|funfzehn|fuenfzehn|sechzehn|siebzehn"
)
AGE = rf"(?:{NUM}|{WORDS})"
_NOT_AGE = (
    r"(?!\s*(?:%|percent|dollars?|euros?|bucks|minutes?|mins?|hours?|hrs?|seconds?|feet|ft|"
    r"inches|kg|kilos?|lbs?|pounds|miles|km|am|pm|o'?clock|times|points|items|pages|"
    r"days|weeks|months|people|of\b|cm|m\b|pieces|steps|stars|foot|lovers|persons|souls|"
    r"hearts|friends|strangers|sides|halves|more|different|separate|things|ways|kinds|sorts|"
    r"grad|uhr|prozent|meter|stunden|minuten|tage|wochen|monate|mal|punkte|seiten|cent|"
    r"kilometer|stuck|stueck))"
)

# A person under 18 (strong signals: an age, a school grade, a word that means a minor).
MINOR = [
    # en: "13 years old", "13-year-old", "13yo", "13 y/o", "aged 13", "I'm 13", "she's 13"
    rf"{AGE}[\s-]*(?:years?|yrs?|yr)[\s-]*(?:old|of age)",
    rf"{AGE}[\s-]*year[\s-]*olds?",
    rf"{NUM}\s*(?:yo|y/o|y\.o\.?|yrs?)",
    rf"(?:aged?|age of|age:|i'?m|i am|im|she'?s|he'?s|she is|he is|they'?re|they are|you'?re|"
    rf"you are|u r|ur|turned|turning|turns|just turned)\s+"
    rf"(?:only\s+|just\s+|barely\s+)?{AGE}{_NOT_AGE}",
    rf"{NUM}\s*/\s*[fm]|[fm]\s*/\s*{NUM}|\(\s*{NUM}\s*[fm]?\s*\)",  # "(13)", "14/f"
    r"under\s*(?:the\s+age\s+of\s+)?(?:1[0-8]|eighteen)|under-?age\w*|minors|underaged?",
    r"(?:a|the|with|to|involving|sexuali[sz]e|sexuali[sz]ing|any|other|this|that)\s+minor"
    r"(?!\s+(?:cut|cuts|key|keys|chord|issue|issues|problem|problems|injur\w*|change|changes|"
    r"detail|details|scale|league|leagues|burn|burns|edit|edits|surgery|role|roles|"
    r"character|fix|fixes|bug|bugs|adjust\w*|point|points|mistake|mistakes|offen[cs]es?|in|"
    r"planet|axis|version|update|risk|damage|concern|setback|error|errors|amount|party|"
    r"arc|third|second|sixth|seventh|mode|premise|tweak|tweaks|note|typo))",
    r"(?:[1-9]|1[0-2])(?:st|nd|rd|th)[\s-]+grade\w*",
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth)"
    r"[\s-]+grade\w*",
    r"grade\s+(?:[1-9]|1[0-2]|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(?:student|pupil|girl|boy|kid|class|classmate)s?",
    r"year\s+(?:[1-9]|1[01])\s+(?:student|pupil|girl|boy|kid|class|classmate)s?",
    r"(?:middle|elementary|primary|grade|junior high|high)[\s-]+school(?:ers?|girls?|boys?)?",
    r"kindergarten\w*|pre-?school\w*|schoolgirls?|schoolboys?|school\s?kids?",
    # "sophomore", "freshman": high school unless college is said next to it
    r"(?<!college )(?<!university )(?:sophomores?|freshm[ae]n)"
    r"(?! (?:year )?(?:at|in|of) (?:college|university|uni)\b)(?! in college)",
    r"pre-?teens?|teens?|teen-?age[drs]?|teenagers?|tweens?|"
    r"adolescents?|juveniles?|pubescent|prepubescent|loli|lolis|lolicon|shota|shotacon|"
    r"jailbait|pedo\w*|paedo\w*",
    r"(?:little|young|small|tiny)\s+(?:girls?|boys?|ones?|kids?|child|children)|toddlers?|"
    r"infants?|girl scouts?|boy scouts?|cub scouts?",
    r"(?:child|kid|minor|teen|preteen|underage)[\s-]*(?:porn\w*|sex\w*|nudes?|bride)",
    # es
    rf"(?:(?:tengo|tienes|tiene|tenia|tenemos|tienen|con|cumpli|cumple|cumplio|cumplir|a los)|"
    rf"(?:nina|nino|chica|chico|chavala|joven|adolescente|hija|hijo|alumna|alumno|personaje|"
    rf"protagonista|muchacha|muchacho)\s+de)\s+(?:solo\s+|apenas\s+|casi\s+)?{AGE}\s+anos",
    # a character's or person's age stated: "Mia is 12", "who is only thirteen"
    rf"(?:is|who'?s|was|are)\s+(?:only\s+|just\s+|barely\s+)?{AGE}{_NOT_AGE}",
    r"menor(?:es)? de edad|menores|ninas|ninos|una nina|un nino|la nina|las ninas|"
    r"los ninos|chiquilla\w*|colegialas?|colegial|adolescentes?|chavala|"
    r"escuela primaria|de primaria|de secundaria|(?:[1-6])o de (?:primaria|secundaria|eso)|"
    r"mi hija|mi hijo|mi sobrina|mi sobrino|mi hijastra|mi hijastro|alumna|alumno",
    # pt
    rf"(?:(?:tenho|tens|tem|tinha|com|fiz|faz|fez|fazer|aos)|(?:menina|menino|garota|garoto|"
    rf"crianca|filha|filho|aluna|aluno|personagem|jovem|adolescente)\s+de)\s+(?:so\s+|apenas\s+|quase\s+)?"
    rf"{AGE}\s+anos",
    r"criancas?|meninas?|meninos?|menor de idade|menores de idade|garotinhas?|garotinhos?|"
    r"(?:[5-9]|quinto|sexto|setimo|oitavo|nono)o? ano|ensino fundamental|"
    r"minha filha|meu filho|minha sobrinha|minha enteada|meu enteado|alunas?",
    # fr
    rf"(?:j'?ai|j ai|il a|elle a|qui a|tu as|avait|avoir|agee?s? de|age de|fete ses|fille de|"
    rf"garcon de|enfant de|gamine? de|ado de|adolescente? de|eleve de|personnage de|fillette de|"
    rf"heroine de)\s+"
    rf"(?:seulement\s+|juste\s+|presque\s+)?{AGE}\s+ans",
    r"enfants?|fillettes?|petites? filles?|petits? garcons?|mineure?s?|adolescente?s?|ados|"
    r"collegiennes?|collegiens?|lyceennes?|lyceens?|ecolieres?|ecoliers?|"
    r"en (?:6e|5e|4e|3e|6eme|5eme|4eme|3eme|sixieme|cinquieme|quatrieme|troisieme|cm1|cm2|ce2)|"
    r"ma fille|mon fils|ma niece|ma belle-fille",
    # de
    rf"{AGE}[\s-]*(?:jahre?n?\s+alt|jahrige?[nrsm]?|jaehrige?[nrsm]?)",
    rf"(?:ich bin|sie ist|er ist|du bist|bin erst|ist erst|bist erst|ist|war|wird|sind)\s+"
    rf"(?:erst\s+|nur\s+|gerade\s+|kaum\s+)?{AGE}{_NOT_AGE}",
    r"(?:[1-9]|1[0-2])\.\s*klasse|klasse\s+(?:[1-9]|1[0-2])|"
    r"(?:erste|zweite|dritte|vierte|funfte|fuenfte|sechste|siebte|achte|neunte|zehnte)n?\s+"
    r"klasse|grundschul\w*|schuler(?:in|innen)?|schueler(?:in|innen)?|kindes|die kinder|ein kind|"
    r"das kind|mein kind|meine kinder|den kindern|kinderporn\w*|"
    r"minderjahrig\w*|minderjaehrig\w*|jugendliche\w*|meine tochter|mein sohn|meine nichte|"
    r"kleines madchen|kleine madchen",
]
# Weak signals: a parent's words for their children. They count unless the text is about
# an adult couple ("after the kids are asleep, a romantic evening with my wife").
WEAK_MINOR = [
    r"child|children|kids?|kiddos?|my (?:son|daughter|niece|nephew|stepdaughter|stepson|"
    r"granddaughter|grandson|grandchild)|(?:his|her|their) (?:daughter|son)|babysit\w*",
]
ADULT_COUPLE = [
    r"my (?:wife|husband|partner|spouse|fiancee?|girlfriend|boyfriend)|(?:wife|husband) and i|"
    r"date night|mi (?:esposa|esposo|marido|mujer|pareja)|ma femme|mon mari|meine frau|"
    r"mein mann|minha esposa|meu marido",
]

# Sexual or romantic content, any language.
SEXUAL = [
    # en
    r"sex|sexy|sexier|sexiest|sexual\w*|sexting|sexted|sext|sexts|sexily|erotic\w*|erotica|"
    r"porn\w*|nudes?|nudity|naked|undress\w*|striptease|stripper|lingerie|aroused|arousal|"
    r"arousing|horny|foreplay|orgasm\w*|masturbat\w*|intercourse|fetish\w*|kinky|nsfw|"
    r"lewd|smut\w*|steamy|x-rated|xxx|hentai|onlyfans|genitals?|genitalia|breasts?|boobs|"
    r"penis|vagina|private parts|bedroom scene|underwear|panties|thongs?|"
    r"sexually explicit|explicit (?:story|scene|content|photos?|pics?|pictures?|images?|"
    r"videos?|roleplay|role-play|chat|details?|description)",
    r"(?:make|making|made) love|(?:sleep|sleeping|slept|sleeps) (?:with|together)|"
    r"hook(?:ing|ed)? ?up|one night stand|seduc\w*|lust|lustful|lusting|turn(?:s|ed)? (?:me|you|"
    r"him|her) on|hot for|attracted to|touch(?:ing|es|ed)? (?:her|him|me|you|them)\b(?! up)",
    r"kiss|kisses|kissed|kissing|kissy|make out|making out|made out|romance|romances|"
    r"romantic\w*|love (?:scene|story|stories|affair|letter|poem|interest|making|life|triangle)|"
    r"in love|fall(?:s|ing)? in love|fell in love|crush on|has a crush|(?:go|going|went|goes) "
    r"(?:out )?on a date|ask(?:ed|ing)? (?:her|him) out|a date with|dating|girlfriend|boyfriend|"
    r"gf|bf|flirt\w*|cuddl\w*|snuggl\w*|caress\w*|intimate\w*|intimacy|sensual\w*|"
    r"be my (?:wife|husband|valentine|babe|baby|lover)|marry me|wedding night|honeymoon|"
    r"my love|darling|babe|secret relationship|(?:become|became|becoming|are|were|be|as|secret) "
    r"lovers",
    # es
    r"sexo|sexual\w*|erotic[oa]s?|desnud[oa]s?|desnud\w*|besos?|besar\w*|besa|besame|besando|"
    r"novia|novio|romantic[oa]s?|hacer el amor|enamorad[oa]s?|enamorar\w*|cita romantica|"
    r"coquete\w*|acostarse con|acostarme con|caricias?|acariciar\w*|lenceria|excitad[oa]s?|"
    r"amante|amantes|relacion amorosa|te amo|te quiero|amor|de amor",
    # fr
    r"sexe|sexuel\w*|erotique\w*|toute nue|tout nu|nue|nues|deshabill\w*|bisous?|"
    r"embrass\w*|baiser|petite amie|petit ami|amoureu\w*|faire l'amour|romantique\w*|seduire|"
    r"draguer|drague|coucher avec|caresses?|caresser|sensuel\w*|calins?|je t'aime|amants?|amour|"
    r"copain|copine|mon cheri|ma cherie|coquin\w*|cochon\w*",
    # de
    r"sexuell\w*|erotisch\w*|nackt\w*|kuss\w*|kusse|kussen|kusst|kuesse\w*|kuessen|liebes\w*|"
    r"meine freundin|mein freund|"
    r"liebesgeschichte|liebesszene|liebesbrief|liebesbeziehung|verliebt\w*|romantisch\w*|"
    r"romantik|verfuhr\w*|verfuehr\w*|schlafen mit|mit (?:ihr|ihm) schlafen|zartlich\w*|"
    r"dessous|erregt|erregend|intim\w*|freundin sein|freund sein|ich liebe dich",
    # pt
    r"sexo|erotic[oa]s?|nua|nuas|pelad[oa]s?|beijo\w*|beija\w*|beijar|namorad[oa]s?|namoro|"
    r"namorar|fazer amor|apaixonad\w*|seduz\w*|transar|caricias?|excitad[oa]s?|"
    r"eu te amo|relacao amorosa",
]
# Names of media genres are not romantic content by themselves.
GENRES = [
    r"romantic[\s-]+comed(?:y|ies)|rom-?coms?|comedias? romanticas?|comedies? romantiques?|"
    r"romantische[n]? komodie\w*|romance novels? section|romance languages?|"
    r"(?:carbon|radiocarbon|radiometric|isotope) dating|dating (?:back|from)",
]
# "Grooming" with a person as its object (not "dog grooming", not "the bride and groom").
GROOM_WORD = [
    r"groom(?:ing|ed|s)?\s+(?:a|the|my|her|him|them|this|that|young|little|kids?|child\w*|"
    r"minors?|girls?|boys?|students?|teens?)",
]
# Drawing a child into contact or secrecy (grooming's mechanics), any language: a request
# in itself, whatever else the text says.
GROOMING = [
    r"(?:alone(?: time)?|be alone) with (?:her|him|them|a|the|my|his|this)|get (?:her|him|them) "
    r"alone|meet (?:her|him|them|up) (?:alone|in private|in secret|without)|without (?:her|his|"
    r"their) (?:parents?|mom|mum|mother|dad|father|family) (?:knowing|finding out|noticing|"
    r"seeing|find out|ever knowing)",
    r"(?:get|make) (?:her|him|them) (?:to )?trust me|"
    r"(?:she|he|they|kids?|girls?|boys?) (?:sends?|shows?) me (?:\w+ )?(?:pics|pictures|photos|"
    r"selfies|videos|nudes)|"
    r"keep (?:it|this|our \w+|the \w+) (?:a )?secret|our (?:little )?secret|not tell (?:her|his|"
    r"their) (?:parents?|mom|dad)|gain (?:her|his|their) trust|(?:send|sends|sending) (?:me )?"
    r"(?:pics|pictures|photos|selfies|videos|nudes) of (?:herself|himself|themselves|her|him)",
    r"(?:get|convince|persuade|make|trick|pressure) (?:her|him|them|my \w+|a \w+) (?:to|into) "
    r"(?:kiss|touch|undress|send|sit on|sleep|meet|keep)",
    r"sin que (?:sus|su|los|la|el) (?:padres|madre|padre) (?:lo )?sepa\w*|nuestro secreto|"
    r"sans que (?:ses|les|sa|son) (?:parents|mere|pere)|notre secret|"
    r"ohne dass (?:ihre|seine|die|der) (?:eltern|mutter|vater)|unser geheimnis|"
    r"sem que (?:os|seus|a|o) (?:pais|mae|pai)|nosso segredo",
    # alone with a child, es / fr / de / pt
    r"a solas con (?:ella|el|ellos)|seule? avec (?:elle|lui)|(?:allein|alleine) (?:mit (?:ihr|"
    r"ihm)|treffen)|sozinh[oa]s? com (?:ela|ele)",
]
# Requests to produce, play out or obtain: what the floor never grants for minors, whatever
# else the text says.
REQUEST = [
    r"writ(?:e|ing|ten)|describe\w*|story|stories|scene|scenes|roleplay|role-play|role play|rp|"
    r"pretend|imagine|act as|acting as|you are|you're|youre|play (?:the|a) (?:role|part)|"
    r"fanfic\w*|fan fiction|poem|narrat\w*|continue|chapter|novel|script|dialogue|erotica|"
    r"generate|draw|depict\w*|illustrat\w*|be my|talk dirty|sext me|flirt with me|kiss me|"
    r"date me|i love you|let'?s|you and me|(?:find|get|buy|download|trade|share|send|show)\b.{0,20}"
    r"\b(?:pics?|pictures?|photos?|videos?|images?|nudes|content|material)",
    r"escrib\w*|describ\w*|historia|relato|cuento|escena|imagina\w*|fing\w*|actua como|eres|"
    r"juego de rol|ecri\w*|histoire|recit|imagine|fais semblant|tu es|jeu de role|"
    r"schreib\w*|geschichte|szene|stell dir vor|tu so als|du bist|rollenspiel|beschreib\w*|"
    r"escrev\w*|conto|cena|imagin\w*|finja|voce e|voce eh|seja (?:minha|meu)|se mi novia|"
    r"sois ma|sei meine",
    # the speaker acting on someone: "how do I kiss ...", "help me get her alone"
    r"(?:how (?:do|can|could|would|should) i|how to|help me|i want to|i wanna|teach me to|ways to|"
    r"best way to)\s+(?:get to\s+|secretly\s+|finally\s+)?(?:seduc\w*|kiss|touch|date|sleep with|"
    r"have sex|make out with|flirt with|undress|get (?:her|him|them)|meet (?:her|him|them|up with)|"
    r"be alone with|sext|groom|lure|befriend)",
]
# Protective, medical, educational or legal context: a parent, teacher, doctor, survivor or
# researcher asking about minors and sex (report abuse material, signs of grooming, puberty).
PROTECTIVE = [
    r"report\w*|protect\w*|prevent\w*|warning signs?|signs? (?:of|that)|red flags?|"
    r"safe(?:ty|guard\w*)?|talk (?:to|with) (?:my|our|a|the|your|their)?\s?\w+ about|"
    r"explain\w* (?:\w+ )?to (?:my|our|a|the|your|their)|sex(?:ual)? education|sex ed|"
    r"sex-ed|age-appropriate|age appropriate|appropriate age|the talk|birds and (?:the )?bees|"
    r"puberty|p(?:a)?ediatrician|doctor|gyn\w*|"
    r"therapist|counsel\w*|psycholog\w*|is (?:it|this|that) normal|normal for|what should (?:i|we)"
    r" do|how (?:can|do|should) (?:i|we) (?:help|support|protect|talk|explain|respond|teach|"
    r"know)|survivors?|victims?|hotline|helpline|police|ncmec|cybertip\w*|iwf|law|laws|legal|"
    r"illegal|age of consent|research\w*|statistic\w*|history of|policy|policies|guidelines|"
    r"as a parent|for parents|parenting|rules|boundaries|gender|unborn|pregnan\w*|"
    r"hurts?|pain\w*|sore|itch\w*|rash|swollen|lumps?|growing|develop\w*|bras?|curriculum|"
    r"lesson plan|body safety|consent|bullying|mandated reporter|"
    r"worried|concerned|medical|medicine|symptoms?|hormon\w*|periods?|menstrua\w*|hpv|vaccin\w*|"
    r"was abused|been abused|abuse prevention|exploitation prevention|moderat\w*|"
    r"denunci\w*|proteg\w*|prevenir|prevencion|senales|signes|protection|signaler|"
    r"melden|schutzen|schuetzen|anzeichen|aufklarung|aufklaerung|educacion sexual|"
    r"education sexuelle|educacao sexual|pubertad|puberte|pubertat|puberdade",
]
