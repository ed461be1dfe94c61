"""The example texts of the tutorials users follow, shared by the dialect and parity tests:
OpenSearch's rerank-by-field and SageMaker reranker tutorials, the aws-samples
bge-reranker-large notebook and Together AI's rerankers guide."""

CAPITAL_QUERY = "What is the capital city of America?"  # OpenSearch SageMaker reranker
CAPITAL_DOCS = [
    "Carson City is the capital city of the American state of Nevada.",
    "The Commonwealth of the Northern Mariana Islands is a group of islands in the Pacific Ocean."
    " Its capital is Saipan.",
    "Washington, D.C. (also known as simply Washington or D.C., and officially as the District"
    " of Columbia) is the capital of the United States. It is a federal district.",
    "Capital punishment (the death penalty) has existed in the United States since beforethe"
    " United States was a country. As of 2017, capital punishment is legal in 30 of the 50"
    " states.",
]
PANDA_QUERY = "what is panda?"  # the aws-samples bge-reranker-large notebook
PANDA_DOCS = ["hi", "panda is a restaurant",
              "The giant panda (Ailuropoda melanoleuca), sometimes called a panda bear or simply"
              " panda, is a bear species endemic to China."]
NYC_QUERY = "artists art creative community"  # OpenSearch rerank-by-field: text = document
NYC_AREAS = [
    {"area_name": "Astoria", "borough": "Queens",
     "facts": "Astoria is home to many artists and has a large Greek-American community. The"
              " area also boasts some of the best Mediterranean food in NYC."},
    {"area_name": "Williamsburg", "borough": "Brooklyn",
     "facts": "Williamsburg is a hotspot for young professionals and artists. The neighborhood"
              " has seen rapid gentrification over the past two decades."},
    {"area_name": "Harlem", "borough": "Manhattan",
     "facts": "Harlem was the birthplace of the Harlem Renaissance, a cultural movement that"
              " celebrated Black culture through art, music, and literature."},
]
MOVIES_QUERY = "super hero mystery action movie about bats"  # Together AI's guide
MOVIES = ["The Dark Knight", "Watchmen", "Predator", "Despicable Me 2",
          "Night at the Museum: Secret of the Tomb", "Batman v Superman: Dawn of Justice",
          "Penguins of Madagascar", "Batman & Robin", "Batman Begins", "Super 8", "Megamind",
          "The Dark Knight Rises", "Batman Returns", "The Incredibles", "The Raid"]
